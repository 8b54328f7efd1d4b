import { execFile } from "node:child_process";
import { appendFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODEX_BIN, codexEnv, workDir } from "../support/agents.js";
import { startModelServer, type ModelRequest, type ModelServer } from "../support/model-server.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, type Client } from "../support/clients.js";
import { readmeBlocks } from "../support/readme.js";

/** The Codex configuration README.md's "Let agents reach the queue (MCP)" section shows for /mcp. */
async function readmeTable(): Promise<string> {
  const [block] = await readmeBlocks("Let agents reach the queue (MCP)", "toml");
  if (!block) throw new Error("README.md has no toml block under \"Let agents reach the queue (MCP)\"");
  return block;
}

interface OfferedTool {
  type?: string;
  name?: string;
  tools?: OfferedTool[];
}

/**
 * The tools a request offered the model, as `[namespace, name]`: Codex offers an MCP
 * server's tools in a namespace of their own (`mcp__<server>`).
 */
const toolsOf = (request: ModelRequest): [string | undefined, string][] =>
  ((request.body.tools as OfferedTool[] | undefined) ?? []).flatMap((t): [string | undefined, string][] =>
    t.type === "namespace" ? (t.tools ?? []).map((inner) => [t.name, inner.name ?? ""]) : [[undefined, t.name ?? t.type ?? ""]],
  );

/**
 * The real Codex CLI with Turnqueue as its MCP server over streamable HTTP (`/mcp`, the
 * token in a bearer variable), driven by a scripted model on loopback whose reply is a call
 * of the `add_to_queue` tool: the item lands in the thread's queue.
 */
describe("Codex CLI (real, scripted model) reaches the queue through Turnqueue's MCP server", { timeout: 240_000 }, () => {
  let server: TestServer;
  let model: ModelServer;
  let user: Client;

  beforeAll(async () => {
    server = await startTestServer();
    model = await startModelServer();
    user = connect(server, await server.token("user", "local", "owner"));
  });
  afterAll(async () => {
    user?.close();
    await model?.close();
    await server?.close();
  });

  it("the scripted model calls add_to_queue over /mcp; Codex runs it with the user's token and the item is queued", async () => {
    const { threadId } = await user.thread.create.mutate({ title: "queued by an agent" });
    await user.queue.pause.mutate({ threadId });
    let offered: string[] = [];
    model.script((request) => {
      // After the tool ran, Codex sends its output back: the turn ends with a text.
      if (JSON.stringify(request.body.input ?? "").includes("function_call_output")) return { kind: "text", text: "queued it" };
      const tools = toolsOf(request);
      offered = tools.map(([namespace, name]) => (namespace ? `${namespace}.${name}` : name));
      const add = tools.find(([namespace, name]) => namespace === "mcp__turnqueue" && name === "add_to_queue");
      if (!add) return { kind: "text", text: `no add_to_queue among ${offered.join(", ")}` };
      return { kind: "tool", namespace: add[0], name: add[1], arguments: { threadId, text: "Write the release notes", idempotencyKey: "codex-1" } };
    });

    // README's table, as written, but for the test server's port.
    const table = await readmeTable();
    expect(table).toContain('url = "http://127.0.0.1:4780/mcp"');
    const env = codexEnv(model.url);
    // Codex offers no tool of a server that has not answered by its startup timeout (10 s by
    // default), and a loaded test machine can take longer than that; `codex exec` has nobody
    // to approve a tool call, so this server's tools are approved beforehand.
    const extra = ["startup_timeout_sec = 120", "tool_timeout_sec = 120", 'default_tools_approval_mode = "approve"', ""].join("\n");
    appendFileSync(path.join(env.CODEX_HOME!, "config.toml"), `\n${table.replace("http://127.0.0.1:4780", server.url)}\n${extra}`);
    const running = promisify(execFile)(
      CODEX_BIN,
      ["exec", "--skip-git-repo-check", "--sandbox", "read-only", "--cd", workDir(), "Queue a follow-up: write the release notes"],
      { env: { ...env, TURNQUEUE_TOKEN: await server.token("user", "local", "codex") }, timeout: 180_000, maxBuffer: 16 << 20 },
    );
    // `codex exec` reads more of the prompt from stdin until it ends.
    running.child.stdin?.end();
    const run = await running.catch((error: { stdout?: string; stderr?: string; message: string }) => ({ stdout: error.stdout ?? "", stderr: `${error.message}\n${error.stderr ?? ""}` }));

    const snapshot = await user.thread.get.query({ threadId });
    expect(snapshot.queue.items.map((i) => i.text), `offered: ${offered.join(", ")}\n${run.stderr}\n${run.stdout}`).toEqual(["Write the release notes"]);
    expect(offered).toContain("mcp__turnqueue.show_queue");
  });
});
