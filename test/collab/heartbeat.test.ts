import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../support/server.js";
import { until } from "../support/poll.js";
import { openRawWebSocket } from "../support/raw-websocket.js";
import { connect, createThread, startCollabServer, synced } from "./harness.js";

/**
 * The clock is shortened (`--collab-ping-ms` 100): a socket that goes silent without closing,
 * as a device that lost its network, is found by the missed pong alone.
 */
describe("a /yjs connection that stops answering pings (pings every 100 ms)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCollabServer({ config: { collabPingMs: 100 } });
  });
  afterAll(() => server?.close());

  it("is ended by the server (terminated, no close frame) once a ping went unanswered, while a device that answers them stays connected throughout", async () => {
    const { threadId } = await createThread(server, ["first"]);
    const device = connect(server, threadId, await server.token("user", "local", "ann"));
    await synced([device]);
    const drops: string[] = [];
    device.provider.on("status", ({ status }: { status: string }) => status !== "connected" && drops.push(status));

    // A hand-written client: it reads the server's frames and never answers a ping.
    const silent = await openRawWebSocket(server.url, `/yjs/${threadId}?token=${await server.token("user", "local", "ben")}`);
    const started = Date.now();
    let ended = false;
    void silent.closed.then(() => (ended = true));
    await until(() => ended, () => "the silent socket is still open", 10_000);
    silent.destroy();
    // Ended without a close frame (terminated), after at least one unanswered ping.
    expect({ closeFrame: await silent.closed, afterAPing: Date.now() - started >= 100 }).toEqual({ closeFrame: null, afterAPing: true });

    // Several more pings: the answering device is never dropped.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect({ drops, closes: device.closes, connected: device.provider.wsconnected }).toEqual({ drops: [], closes: [], connected: true });
    device.destroy();
  });
});
