import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ThreadEvent } from "../../src/api/thread-events.js";
import { InProcessBus } from "../../src/cluster/bus.js";
import { QueueAdd, type Role } from "../../src/domain/index.js";
import { createEngine } from "../../src/engine/index.js";
import type { Engine } from "../../src/engine/types.js";
import type { Config } from "../../src/config.js";
import { createTestDatabase, hasPostgres } from "../support/postgres.js";
import { codeOf, connect, type Client } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { redisAvailable, redisUrl } from "./redis.js";

const hasRedis = await redisAvailable();

/** What a subscription delivered so far, awaitable by predicate. */
function stream<T>() {
  const items: T[] = [];
  let wake = () => {};
  let failure: unknown = null;
  return {
    items,
    push(item: T) {
      items.push(item);
      wake();
    },
    fail(error: unknown) {
      failure = error;
      wake();
    },
    /** Resolves with the first item (from the start) matching `test`. */
    async find(test: (item: T) => boolean): Promise<T> {
      for (;;) {
        if (failure) throw failure;
        const found = items.find(test);
        if (found !== undefined) return found;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

describe.runIf(hasPostgres && hasRedis)("two instances on one PostgreSQL database and one Redis", () => {
  let database: { url: string; drop: () => Promise<void> };
  let a: TestServer;
  let b: TestServer;
  let shared: Partial<Config>;
  const closers: Array<() => unknown> = [];

  /** A client of one instance, as the SDK builds it. */
  async function client(server: TestServer, role: Role = "user", workspaceId = "local") {
    const api = connect(server, await server.token(role, workspaceId));
    closers.push(() => api.close());
    return api;
  }


  function threadEvents(api: Client, threadId: string) {
    const seen = stream<ThreadEvent>();
    const subscription = api.thread.events.subscribe({ threadId }, { onData: ({ data }) => seen.push(data as ThreadEvent), onError: seen.fail });
    closers.push(() => subscription.unsubscribe());
    return seen;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    // Same database, same Redis, same signing secret: a token works on either instance.
    // A short sweep, so the tests of bus loss do not wait long for the safety net.
    shared = { databaseUrl: database.url, redisUrl, secret: randomBytes(32).toString("base64url"), sweepIntervalMs: 300 };
    a = await startTestServer({ config: shared });
    b = await startTestServer({ config: shared });
  });

  /**
   * Fault injection: a writer on the same database whose publishes never reach Redis, as
   * when an instance commits and then loses Redis. Its commits are in the log only.
   */
  function unpublishedWriter(): Engine {
    const engine = createEngine({ store: a.services.store, bus: new InProcessBus(), now: () => new Date(), policy: a.services.config.drainPolicy, logger: a.services.logger });
    closers.push(() => engine.close());
    return engine;
  }
  const addUnpublished = (engine: Engine, threadId: string, text: string) =>
    engine.execute(threadId, QueueAdd.parse({ type: "queue.add", queueItemId: randomUUID(), message: { messageId: randomUUID(), text } }), { actor: "user:user" });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  it("a command on instance A reaches a thread.events subscriber on instance B", async () => {
    const [onA, onB] = [await client(a), await client(b)];
    const { threadId } = await onA.thread.create.mutate({ title: "shared" });
    const seen = threadEvents(onB, threadId);
    // The subscription replays the log first; from then on only the bus brings news from A.
    await seen.find((e) => e.type === "thread.created");

    await onA.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text: "hello from A" } });
    const added = await seen.find((e) => e.type === "queue.item-added");
    expect(added.version).toBe(2);
    expect(JSON.stringify(added.payload)).toContain("hello from A");
  });

  it("loses no command and keeps versions gapless under concurrent queue.add on both instances for one thread", async () => {
    const [onA, onB] = [await client(a), await client(b)];
    const { threadId } = await onA.thread.create.mutate({});
    const liveOnA = threadEvents(onA, threadId);
    await liveOnA.find((e) => e.type === "thread.created");

    const perInstance = 30;
    const sent = [...Array(perInstance * 2)].map((_, i) => ({ messageId: `m-${i}`, text: `message ${i}`, via: i % 2 === 0 ? onA : onB }));
    // As a real client does: a retryable refusal (the machine is loaded, the pool is busy) is
    // sent again with the same command id, and must then count once.
    const add = async ({ via, messageId, text }: (typeof sent)[number]) => {
      const commandId = randomUUID();
      for (;;) {
        try {
          return await via.queue.add.mutate({ threadId, commandId, message: { messageId, text } });
        } catch (error) {
          if (codeOf(error) !== "SERVICE_UNAVAILABLE") throw error;
        }
      }
    };
    const acks = await Promise.all(sent.map(add));
    expect(acks.every((ack) => ack.status === "pending")).toBe(true);
    expect(new Set(acks.map((ack) => ack.queueItemId)).size).toBe(sent.length);

    // Every acknowledged message is in the queue, seen from either instance.
    const snapshot = await onB.thread.get.query({ threadId });
    expect(snapshot.queue.items.map((item) => item.messageId).sort()).toEqual(sent.map((m) => m.messageId).sort());
    expect((await onA.thread.get.query({ threadId })).version).toBe(snapshot.version);

    // A fresh reader on B sees the whole log: versions 1..V with no gap and no repeat.
    const fromStart = threadEvents(onB, threadId);
    await fromStart.find((e) => e.version === snapshot.version);
    expect(fromStart.items.map((e) => e.version)).toEqual([...Array(snapshot.version)].map((_, i) => i + 1));
    expect(fromStart.items.filter((e) => e.type === "queue.item-added")).toHaveLength(sent.length);

    // The live subscriber on A, there before the burst, got every version exactly once, in order.
    await liveOnA.find((e) => e.version === snapshot.version);
    expect(liveOnA.items.map((e) => e.version)).toEqual([...Array(snapshot.version)].map((_, i) => i + 1));
  });

  it("an agent connected to B receives each item enqueued on A exactly once", async () => {
    const workspace = `ws-${randomUUID()}`;
    const user = await client(a, "user", workspace);
    const agent = await client(b, "agent", workspace);
    const { threadId } = await user.thread.create.mutate({});

    const dispatches = stream<{ threadId: string; queueItemId: string; kind: string; message: { text: string } }>();
    const subscription = agent.agent.dispatches.subscribe({}, { onData: ({ data }) => dispatches.push(data as never), onError: dispatches.fail });
    closers.push(() => subscription.unsubscribe());
    await agent.agent.session.mutate({ threadId, status: "ready" });

    const first = await user.queue.add.mutate({ threadId, message: { messageId: "first", text: "run the tests" } });
    const d1 = await dispatches.find((d) => d.queueItemId === first.queueItemId);
    expect(d1).toMatchObject({ threadId, kind: "turn", message: { text: "run the tests" } });
    await agent.agent.turnStarted.mutate({ threadId, queueItemId: d1.queueItemId, turnId: "turn-1" });

    // The next item waits for the turn to end, then comes to B, once, after the first.
    const second = await user.queue.add.mutate({ threadId, message: { messageId: "second", text: "now fix them" } });
    await agent.agent.turnEnded.mutate({ threadId, turnId: "turn-1", outcome: "completed" });
    await dispatches.find((d) => d.queueItemId === second.queueItemId);
    expect(dispatches.items.map((d) => d.queueItemId)).toEqual([first.queueItemId, second.queueItemId]);

    // Both instances raced to claim; the log shows one claim per item.
    const log = threadEvents(user, threadId);
    const { version } = await user.thread.get.query({ threadId });
    await log.find((e) => e.version === version);
    const claims = log.items.filter((e) => e.type === "queue.item-send-started").map((e) => (e.payload as { queueItemId: string }).queueItemId);
    expect(claims).toEqual([first.queueItemId, second.queueItemId]);
  });

  it("thread.events on B still delivers a commit the bus lost (fault injected: a writer whose publish never reached Redis)", async () => {
    const [onA, onB] = [await client(a), await client(b)];
    const { threadId } = await onA.thread.create.mutate({});
    const seen = threadEvents(onB, threadId);
    await seen.find((e) => e.type === "thread.created");

    await addUnpublished(unpublishedWriter(), threadId, "only in the log");
    await onA.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text: "published" } });

    // The next message on the bus shows B a gap; B reads the log and fills it, in order.
    await seen.find((e) => e.version === 3);
    expect(seen.items.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(JSON.stringify(seen.items[1]!.payload)).toContain("only in the log");
  });

  it("an item whose event the bus lost still reaches the agent on B, once (fault injected: unpublished commit; the leased sweep finds it)", async () => {
    const workspace = `ws-${randomUUID()}`;
    const user = await client(a, "user", workspace);
    const agent = await client(b, "agent", workspace);
    const { threadId } = await user.thread.create.mutate({});
    const dispatches = stream<{ threadId: string; queueItemId: string; message: { text: string } }>();
    const subscription = agent.agent.dispatches.subscribe({}, { onData: ({ data }) => dispatches.push(data as never), onError: dispatches.fail });
    closers.push(() => subscription.unsubscribe());
    await agent.agent.session.mutate({ threadId, status: "ready" });

    // No instance hears of this item on the bus; only the periodic sweep can find it.
    const { state } = await addUnpublished(unpublishedWriter(), threadId, "found by the sweep");
    const [queueItemId] = [...state.items.keys()];
    const dispatch = await dispatches.find((d) => d.queueItemId === queueItemId);
    expect(dispatch).toMatchObject({ threadId, message: { text: "found by the sweep" } });
    await agent.agent.turnStarted.mutate({ threadId, queueItemId: queueItemId!, turnId: "turn-1" });

    const log = threadEvents(user, threadId);
    const { version } = await user.thread.get.query({ threadId });
    await log.find((e) => e.version === version);
    expect(log.items.filter((e) => e.type === "queue.item-send-started")).toHaveLength(1);
    expect(dispatches.items.filter((d) => d.queueItemId === queueItemId)).toHaveLength(1);
  });

  it("an agent whose instance stops resumes on another and gets the dispatch it had not acknowledged; the item is sent once", async () => {
    const c = await startTestServer({ config: shared });
    closers.push(() => c.close());
    const workspace = `ws-${randomUUID()}`;
    const user = await client(b, "user", workspace);
    const { threadId } = await user.thread.create.mutate({});

    const onC = await client(c, "agent", workspace);
    const beforeStop = stream<{ queueItemId: string }>();
    onC.agent.dispatches.subscribe({}, { onData: ({ data }) => beforeStop.push(data as never), onError: beforeStop.fail });
    await onC.agent.session.mutate({ threadId, status: "ready" });
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: "m", text: "survive the move" } });
    await beforeStop.find((d) => d.queueItemId === queueItemId);

    // C goes away before the agent acknowledged; the agent reconnects to A, remembering nothing.
    await onC.close();
    await c.close();
    const onA = await client(a, "agent", workspace);
    const afterMove = stream<{ queueItemId: string; message: { text: string } }>();
    const subscription = onA.agent.dispatches.subscribe({}, { onData: ({ data }) => afterMove.push(data as never), onError: afterMove.fail });
    closers.push(() => subscription.unsubscribe());
    const again = await afterMove.find((d) => d.queueItemId === queueItemId);
    expect(again.message.text).toBe("survive the move");
    await onA.agent.turnStarted.mutate({ threadId, queueItemId, turnId: "turn-1" });

    const log = threadEvents(user, threadId);
    const { version } = await user.thread.get.query({ threadId });
    await log.find((e) => e.version === version);
    expect(log.items.filter((e) => e.type === "queue.item-send-started")).toHaveLength(1);
    expect(log.items.filter((e) => e.type === "message.sent")).toHaveLength(1);
  });
});
