import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredEvent } from "../../src/domain/index.js";
import type { EventFeed } from "../../src/engine/feed.js";
import { claimsIn, databases, ScriptedAgent, startDrainHarness, testDrainConfig, type DrainHarness } from "./drain-harness.js";
import { eventually } from "../support/poll.js";

/**
 * Fault injection: the dispatch streams opened from now on hold every batch from the first
 * claim on until `release()`, in order, as an instance SIGSTOPped between reading a claim
 * and sending it would (`npm run chaos`, pause-instance seed 2, found this shape).
 */
function holdDispatchStreams(feed: EventFeed) {
  const stream = feed.stream.bind(feed);
  let letGo!: () => void;
  const released = new Promise<void>((resolve) => (letGo = resolve));
  let live!: () => void;
  /** A stream read its backlog and waits on live events: a claim from now on comes live. */
  const reading = new Promise<void>((resolve) => (live = resolve));
  feed.stream = async (options) => {
    const events = await stream(options);
    return {
      close: () => events.close(),
      async *[Symbol.asyncIterator]() {
        live();
        let holding = false;
        for await (const batch of events) {
          holding ||= batch.some((e: StoredEvent) => e.type === "queue.item-send-started");
          if (holding) await released;
          yield batch;
        }
      },
    };
  };
  return {
    reading,
    release: () => {
      feed.stream = stream;
      letGo();
    },
  };
}

describe.each(databases)("a dispatch the stream sends late (fault injected: the stream held, as a paused instance) — %s", (database) => {
  let h: DrainHarness;
  let fault: ReturnType<typeof holdDispatchStreams> | undefined;
  let agent: ScriptedAgent | undefined;
  beforeAll(async () => {
    h = await startDrainHarness({ drainPolicy: { ...testDrainConfig.drainPolicy!, dispatchTimeoutMs: 500 } }, database);
    // The runtime this test watches connects once the fault is in place.
    await h.agent.close();
  });
  afterAll(async () => {
    fault?.release();
    await agent?.close();
    await h?.close();
  });

  it("never reaches the agent once its item timed out and was removed; the next one does", async () => {
    const threadId = await h.createThread();
    fault = holdDispatchStreams(h.server.services.engine.feed);
    agent = new ScriptedAgent(h.server.url, await h.server.token("agent"));
    await agent.session(threadId, "ready");
    await fault.reading;
    const stale = await h.add(threadId, "claimed, then the instance stalled");
    const next = await h.add(threadId, "queued after it");
    await eventually(async () => expect((await h.state(threadId)).items.get(stale)?.status).toBe("failed"));
    await h.user.queue.remove.mutate({ threadId, queueItemId: stale });
    await h.user.queue.resume.mutate({ threadId });
    await eventually(async () => expect(claimsIn(await h.events(threadId))).toHaveLength(2));

    fault.release();
    const turn = await agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(next);
    expect(agent.handled.map((d) => d.queueItemId)).toEqual([next]);
  });
});
