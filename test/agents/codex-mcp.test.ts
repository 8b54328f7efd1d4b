import { execFile } from "node:child_process";
import { appendFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODEX_BIN, codexEnv, workDir } from "../support/agents.js";
import { startModelServer, type ModelRequest, type ModelServer } from "../support/model-server.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, type Client } from "../api/harness.js";

/** The names of the tools a request offered the model (Codex qualifies MCP tools by server). */
const toolNames = (request: ModelRequest): string[] =>
  ((request.body.tools as { name?: string; type?: string }[] | undefined) ?? []).map((t) => t.name ?? t.type ?? "");

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
      offered = toolNames(request);
      const tool = offered.find((name) => name.endsWith("add_to_queue"));
      if (!tool) return { kind: "text", text: `no add_to_queue among ${offered.join(", ")}` };
      return { kind: "tool", name: tool, arguments: { threadId, text: "Write the release notes", idempotencyKey: "codex-1" } };
    });

    const env = codexEnv(model.url);
    appendFileSync(
      path.join(env.CODEX_HOME!, "config.toml"),
      ["", "[mcp_servers.turnqueue]", `url = "${server.url}/mcp"`, `bearer_token_env_var = "TURNQUEUE_TOKEN"`, ""].join("\n"),
    );
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
    expect(offered.some((name) => name.endsWith("show_queue"))).toBe(true);
  });
});
