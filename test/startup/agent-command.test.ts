import net from "node:net";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ExitCode } from "../../src/exit-codes.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { turnqueue } from "../server/process.js";
import { until } from "../support/poll.js";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

/** Resolves once `read()` matches. */
const printed = (read: () => string, pattern: RegExp) => until(() => pattern.test(read()), read, 120_000);

describe("turnqueue agent --echo", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it("with a token the server refuses: says so and exits 10, never 'connected'", async () => {
    const wrongSecret = await startTestServer();
    const foreign = await wrongSecret.token("agent");
    await wrongSecret.close();
    const agent = turnqueue(["agent", "--echo", "--url", server.url, "--token", foreign]);
    const { code } = await agent.exited;
    expect(code).toBe(ExitCode.tokenRefused);
    expect(agent.stdout()).toBe("");
    expect(agent.stderr()).toBe(
      "turnqueue agent: the server refused the token (UNAUTHORIZED): issue an agent token signed with the server's secret: " +
        "turnqueue token --workspace <id> --role agent\n",
    );
  });

  it("with a user token (not an agent's): exits 10 too", async () => {
    const agent = turnqueue(["agent", "--echo", "--url", server.url, "--token", await server.token("user")]);
    expect((await agent.exited).code).toBe(ExitCode.tokenRefused);
    expect(agent.stderr()).toMatch(/refused the token \(FORBIDDEN\)/);
  });

  it("with an unreachable server: reports it as such on each retry, with backoff, and connects once the server is there", async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const url = `http://127.0.0.1:${port}`;
    const agent = turnqueue(["agent", "--echo", "--url", url, "--token", await server.token("agent")]);
    try {
      await printed(agent.stderr, /\(attempt 3\)/);
      expect(agent.stderr()).toMatch(
        new RegExp(`^(turnqueue agent: cannot reach ${url} \\(ECONNREFUSED\\); retrying with backoff \\(attempt \\d+\\)\\n)+$`),
      );
      expect(agent.stdout()).toBe("");
      expect(agent.child.exitCode).toBeNull();

      // The server appears on that port: a relay to the running one.
      const relay = net.createServer((client) => {
        const upstream = net.connect(Number(new URL(server.url).port), "127.0.0.1");
        client.pipe(upstream).pipe(client);
        client.on("error", () => upstream.destroy());
        upstream.on("error", () => client.destroy());
      });
      await new Promise<void>((resolve) => relay.listen(port, "127.0.0.1", resolve));
      try {
        await printed(agent.stdout, /connected/);
        expect(agent.stdout()).toBe(`echo agent connected to ${url}; Ctrl-C to stop\n`);
      } finally {
        agent.child.kill("SIGTERM");
        await agent.exited;
        relay.close();
      }
    } finally {
      if (agent.child.exitCode === null) agent.child.kill("SIGKILL");
    }
  });
});
