import { spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTransport, type Transport } from "../../client/transport.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { eventually } from "../support/poll.js";

const root = path.resolve(import.meta.dirname, "../..");

describe("turnqueue agent --echo: the echo runtime as its own process drains a workspace's queues", () => {
  let server: TestServer;
  let user: Transport;
  beforeAll(async () => {
    server = await startTestServer();
    user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  });
  afterAll(async () => {
    await user?.close();
    await server?.close();
  });

  it("keeps a ready session on existing and new threads, runs each queued turn once, in order, and echoes it", async () => {
    const { threadId: before } = await user.thread.create.mutate({ title: "exists before the agent" });
    await user.queue.add.mutate({ threadId: before, message: { messageId: "b1", text: "waiting for an agent" } });

    const agent = spawn(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "agent", "--echo", "--url", server.url, "--token", await server.token("agent"), "--delay-ms", "10"],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"] },
    );
    const lines: string[] = [];
    createInterface({ input: agent.stdout! }).on("line", (line) => lines.push(line));
    try {
      const { threadId: after } = await user.thread.create.mutate({ title: "created while it runs" });
      for (const text of ["first", "second", "third"]) {
        await user.queue.add.mutate({ threadId: after, message: { messageId: text, text } });
      }
      const drained = async (threadId: string) => {
        const snapshot = await user.thread.get.query({ threadId });
        expect(snapshot.queue.items).toEqual([]);
        expect(snapshot.session).toMatchObject({ status: "ready", activeTurnId: null });
      };
      await eventually(() => drained(before), 60_000);
      await eventually(() => drained(after), 60_000);

      expect(lines.filter((l) => l.startsWith(`[${before}]`))).toEqual([expect.stringMatching(/: waiting for an agent$/)]);
      const echoed = lines.filter((l) => l.startsWith(`[${after}]`)).map((l) => l.split(": ").at(-1));
      expect(echoed).toEqual(["first", "second", "third"]);
    } finally {
      await new Promise((resolve) => {
        agent.once("exit", resolve);
        agent.kill("SIGTERM");
      });
    }
  });
});
