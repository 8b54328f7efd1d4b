import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { StoredEvent } from "../../src/domain/index.js";
import type { EventFeed } from "../../src/engine/feed.js";
import { claimsIn, databases, ScriptedAgent, startDrainHarness, testDrainConfig, type DrainHarness } from "./drain-harness.js";
import type { Engine } from "../../src/engine/types.js";
import { eventually, latch } from "../support/poll.js";

/**
 * Fault injection: the dispatch streams opened from now on hold every batch from the first
 * claim on until `release()`, in order, as an instance SIGSTOPped between reading a claim
 * and sending it would (`npm run chaos`, pause-instance seed 2, found this shape).
 */
function holdDispatchStreams(feed: EventFeed) {
  const stream = feed.stream.bind(feed);
  const [released, letGo] = latch();
  /** A stream read its backlog and waits on live events: a claim from now on comes live. */
  const [reading, live] = latch();
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

/**
 * Fault injection: the dispatch stream's reads of a thread's state from the log (its check of
 * a late dispatch) read at once but answer only on `release()`, as an instance SIGSTOPped while
 * its read was under way acts on the answer once continued (`npm run chaos`, pause-instance
 * seed 2, after the first fix). Other readers (the drain's timeout) read as usual.
 */
function holdLogReads(engine: Engine) {
  const load = engine.load.bind(engine);
  const [released, letGo] = latch();
  const [reading, read] = latch();
  engine.load = async (threadId, seen) => {
    if (!/routers[\\/]dispatches/.test(new Error().stack ?? "")) return load(threadId, seen);
    const state = await load(threadId);
    read();
    await released;
    return state;
  };
  return {
    reading,
    release: () => {
      engine.load = load;
      letGo();
    },
  };
}

describe.each(databases)("a dispatch the stream sends late (fault injected: the stream held, as a paused instance) — %s", (database) => {
  let h: DrainHarness;
  let fault: ReturnType<typeof holdDispatchStreams> | undefined;
  let agent: ScriptedAgent | undefined;
  let reads: ReturnType<typeof holdLogReads> | undefined;
  beforeAll(async () => {
    h = await startDrainHarness({ drainPolicy: { ...testDrainConfig.drainPolicy!, dispatchTimeoutMs: 500 } }, database);
    // The runtime this test watches connects once the fault is in place.
    await h.agent.close();
  });
  afterAll(async () => {
    fault?.release();
    reads?.release();
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

  it("read again from the log, but answered only after its item timed out and was removed (fault injected: the read's answer held, as an instance paused mid-read), never reaches the agent; the next one does", async () => {
    await agent?.close();
    const threadId = await h.createThread();
    fault = holdDispatchStreams(h.server.services.engine.feed);
    agent = new ScriptedAgent(h.server.url, await h.server.token("agent"));
    await agent.session(threadId, "ready");
    await fault.reading;
    const stale = await h.add(threadId, "claimed, then the instance stalled mid-read");
    await eventually(async () => expect(claimsIn(await h.events(threadId))).toHaveLength(1));
    // Late by then (past half the 500 ms dispatch timeout), so the stream reads the log again:
    // the item is still being sent, and that answer is held.
    await new Promise((resolve) => setTimeout(resolve, 400));
    reads = holdLogReads(h.server.services.engine);
    fault.release();
    await reads.reading;
    await eventually(async () => expect((await h.events(threadId)).some((e) => e.type === "queue.item-send-failed")).toBe(true));
    await h.user.queue.remove.mutate({ threadId, queueItemId: stale });
    await h.user.queue.resume.mutate({ threadId });
    reads.release();
    const next = await h.add(threadId, "queued after it");

    const turn = await agent.nextTurn(threadId);
    expect(turn.dispatch.queueItemId).toBe(next);
    // (This runtime also gets the earlier test's item, still being sent on its own thread.)
    expect(agent.handled.filter((d) => d.threadId === threadId).map((d) => d.queueItemId)).toEqual([next]);
  });
});

describe.each(databases)("a runtime connecting while the backlog's read is answered late (fault injected: the first read held past the moment) — %s", (database) => {
  let h: DrainHarness;
  const agents: ScriptedAgent[] = [];
  beforeAll(async () => {
    // A 30 s dispatch timeout: the claim stands throughout; the sweep (60 s) never comes.
    h = await startDrainHarness({ drainPolicy: { ...testDrainConfig.drainPolicy!, dispatchTimeoutMs: 30_000 } }, database);
    await h.agent.close();
  });
  afterAll(async () => {
    for (const a of agents) await a.close();
    await h?.close();
  });

  it("still gets what is owed to it at once: the late read is made again, not left to the next sweep", async () => {
    const threadId = await h.createThread();
    const first = new ScriptedAgent(h.server.url, await h.server.token("agent"));
    agents.push(first);
    await first.session(threadId, "ready");
    const item = await h.add(threadId, "claimed before the runtime reconnected");
    await first.nextTurn(threadId);
    // The runtime goes away before it starts the turn: the claim stays owed.
    await first.close();

    const store = h.server.services.store;
    const read = store.unacknowledgedDispatches.bind(store);
    let held = 0;
    store.unacknowledgedDispatches = async (workspaceId) => {
      const events = await read(workspaceId);
      // The first read's answer comes 1.2 s late (past the 1 s moment), as to an instance paused mid-read.
      if (held++ === 0) await new Promise((resolve) => setTimeout(resolve, 1_200));
      return events;
    };
    try {
      const second = new ScriptedAgent(h.server.url, await h.server.token("agent"));
      agents.push(second);
      const turn = await Promise.race([
        second.nextTurn(threadId),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the owed dispatch waited for the sweep")), 10_000)),
      ]);
      expect({ item: turn.dispatch.queueItemId, reads: held }).toEqual({ item, reads: 2 });
    } finally {
      store.unacknowledgedDispatches = read;
    }
  });
});
