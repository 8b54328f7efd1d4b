import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seedPglite } from "../support/server.js";
import { serve } from "./process.js";
import { connect } from "../support/clients.js";

const THREADS = 4;
const WRITERS_PER_THREAD = 4;
/** SIGTERM arrives once this many commands have been acknowledged. */
const ACKS_BEFORE_SIGTERM = 24;

const textOf = (messageId: string) => `${messageId} `.repeat(200);
/** Two cold starts of the embedded database on two shared cores; a limit, not a measurement. */
const SLOW = 240_000;

describe("turnqueue serve stopped by SIGTERM while commands are in flight", () => {
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), "turnqueue-shutdown-"));
    await seedPglite(dataDir);
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it("exits 0, and after a restart every acknowledged command is in the log, whole, once", async () => {
    const first = await serve(["--data-dir", dataDir]);
    const api = connect(first, first.token);
    const threadIds = await Promise.all(
      Array.from({ length: THREADS }, async (_, t) => (await api.thread.create.mutate({ threadId: `t${t}`, title: `thread ${t}` })).threadId),
    );

    const acknowledged = new Set<string>();
    const attempted = new Set<string>();
    let signalled = false;
    // Each writer adds items one after another until the server stops answering it.
    const writer = async (threadId: string, w: number) => {
      for (let k = 0; ; k++) {
        const messageId = `${threadId}-w${w}-m${k}`;
        attempted.add(messageId);
        try {
          await api.queue.add.mutate({ threadId, message: { messageId, text: textOf(messageId) } });
        } catch {
          return;
        }
        acknowledged.add(messageId);
        if (!signalled && acknowledged.size >= ACKS_BEFORE_SIGTERM) {
          signalled = true;
          first.child.kill("SIGTERM");
        }
      }
    };
    await Promise.all(threadIds.flatMap((threadId) => Array.from({ length: WRITERS_PER_THREAD }, (_, w) => writer(threadId, w))));

    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(acknowledged.size).toBeGreaterThanOrEqual(ACKS_BEFORE_SIGTERM);

    const second = await serve(["--data-dir", dataDir]);
    try {
      const after = connect(second, second.token);
      const stored = new Map<string, string>();
      for (const threadId of threadIds) {
        const snapshot = await after.thread.get.query({ threadId });
        for (const item of snapshot.queue.items) {
          expect(stored.has(item.messageId), `${item.messageId} stored twice`).toBe(false);
          stored.set(item.messageId, item.text);
        }
      }
      for (const messageId of acknowledged) expect(stored.get(messageId), `acknowledged ${messageId}`).toBe(textOf(messageId));
      // Whatever else was stored was really sent, and whole (a command cut by the stop may or may not have landed).
      for (const [messageId, text] of stored) {
        expect(attempted.has(messageId)).toBe(true);
        expect(text).toBe(textOf(messageId));
      }
    } finally {
      second.child.kill("SIGTERM");
      expect(await second.exited).toEqual({ code: 0, signal: null });
    }
  }, SLOW);
});
