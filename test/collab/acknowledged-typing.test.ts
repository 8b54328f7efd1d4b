import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { createTurnqueueClient, type ThreadQueue } from "../../client/index.js";
import { channels } from "../../src/cluster/bus.js";
import type { Command, StoredEvent } from "../../src/domain/index.js";
import { StoreUnavailableError } from "../../src/store/types.js";
import { redisAvailable, redisUrl } from "../cluster/redis.js";
import { hasPostgres } from "../support/postgres.js";
import { eventually, latch, until } from "../support/poll.js";
import type { TestServer } from "../support/server.js";
import { addItem, createThread, exec, startInstancePair } from "./harness.js";

/**
 * "Acknowledged typing" is what the SDK's `flush` resolving means: the server answered the
 * device's sync request. Each fault the chaos checker (test/chaos/) found had the log end up
 * with something else than that text: a claim on the other instance, a late commit over a
 * later API edit, a replica following the log with an older document. Two instances on one
 * PostgreSQL and one Redis; the faults named in a test's title are injected.
 */
const hasRedis = await redisAvailable();

const claimOf = (log: StoredEvent[]) => {
  const claim = log.find((e) => e.type === "queue.item-send-started");
  return claim?.type === "queue.item-send-started" ? claim.payload : undefined;
};
/** The texts the log took for items, in order. */
const editsIn = (log: StoredEvent[]): string[] => log.flatMap((e) => (e.type === "queue.item-edited" ? [e.payload.text] : []));
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** `promise`, or a failure naming what never came. */
const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(what)), ms).unref())]);

/** A device of `sub` on `server`, synced with the thread's queue; its SDK client is kept in `sdks` to be closed. */
async function openQueue(sdks: ReturnType<typeof createTurnqueueClient>[], server: TestServer, threadId: string, sub: string): Promise<ThreadQueue> {
  const sdk = createTurnqueueClient({ url: server.url, token: await server.token("user", "local", sub) });
  sdks.push(sdk);
  const queue = sdk.openThreadQueue(threadId);
  await queue.whenSynced();
  return queue;
}

/**
 * Runs `around` in place of each turn `server` takes as the thread's writer of the log's texts
 * (the injected fault: `write` is the turn itself, lease and all); returns the undo.
 */
function aroundTextWriter(server: TestServer, threadId: string, around: <T>(write: () => Promise<T>) => Promise<T>): () => void {
  const lease = server.services.lease;
  const tryWith = lease.tryWith;
  lease.tryWith = (<T>(key: string, fn: () => Promise<T>) =>
    key === `collab:text:${threadId}` ? around(() => tryWith.call(lease, key, fn)) : tryWith.call(lease, key, fn)) as typeof lease.tryWith;
  return () => void (lease.tryWith = tryWith);
}

/** Runs `hold` before each command of `server`'s engine that `matches` (the injected fault); returns the undo. */
function holdCommands(server: TestServer, matches: (command: Command) => boolean, hold: () => Promise<void>): () => void {
  const engine = server.services.engine;
  const execute = engine.execute;
  engine.execute = async (threadId, command, options) => {
    if (matches(command)) await hold();
    return execute.call(engine, threadId, command, options);
  };
  return () => void (engine.execute = execute);
}

/** None of `server`'s events about the thread reach the other instance by bus (the fault, injected); returns the undo. */
function dropEvents(server: TestServer, threadId: string): () => void {
  const bus = server.services.bus;
  const publish = bus.publish;
  bus.publish = (channel, message) =>
    channel === channels.events && Buffer.from(message).toString().includes(threadId) ? Promise.resolve() : publish.call(bus, channel, message);
  return () => void (bus.publish = publish);
}

describe.runIf(hasPostgres && hasRedis)("typing acknowledged to a device is the text the log keeps (two instances)", () => {
  let pair: Awaited<ReturnType<typeof startInstancePair>>;
  let a: TestServer;
  let b: TestServer;
  const sdks: ReturnType<typeof createTurnqueueClient>[] = [];
  const open = (server: TestServer, threadId: string, sub: string) => openQueue(sdks, server, threadId, sub);
  /** A thread with one item reading `text`, a device typing into it on A and one on B, both showing it. */
  const oneItemOnBoth = async (text: string) => {
    const { threadId, ids } = await createThread(a, [text]);
    const id = ids[0]!;
    const typist = await open(a, threadId, "ann");
    const reader = await open(b, threadId, "bob");
    await until(() => typist.get(id)?.text === text && reader.get(id)?.text === text);
    return { threadId, id, typist, reader };
  };
  beforeAll(async () => {
    // A coalescing window far longer than each step: only the acknowledgement commits early.
    pair = await startInstancePair(redisUrl, { editCoalesceMs: 1_500 });
    ({ a, b } = pair);
  });
  afterAll(async () => {
    await Promise.all(sdks.map((s) => s.close()));
    await pair?.close();
  });

  it("acknowledged on A while A's edit lock is held up (injected delay), claimed on B at once: the agent gets the typed text", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = await open(a, threadId, "ann");
    await until(() => typist.get(ids[0]!)?.text === "draft");
    const release = holdCommands(a, (c) => c.type === "queue.editLock" && c.forMs > 0, async () => void (await pause(2_000)));
    try {
      typist.edit(ids[0]!, "draft: rename the module, then fix its imports");
      await typist.flush();
      // The agent becomes ready on B right after the acknowledgement; B's drain claims at once.
      await exec(b, threadId, { type: "agent.session", status: "ready" }, "agent:a");
      const claim = await eventually(async () => {
        const found = claimOf(await b.services.store.readThread(threadId, 0));
        expect(found).toBeDefined();
        return found!;
      });
      expect(claim.message.text).toBe("draft: rename the module, then fix its imports");
    } finally {
      release();
    }
  });

  it("typed on A while the store cannot take A's edit lock (refused as unavailable: injected): a device on B sees the keystrokes only once a lock or the commit is in the log", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = await open(a, threadId, "ann");
    const reader = await open(b, threadId, "bob");
    await until(() => typist.get(ids[0]!)?.text === "draft" && reader.get(ids[0]!)?.text === "draft");
    let away = true;
    const restore = holdCommands(a, (c) => c.type === "queue.editLock" && c.forMs > 0, async () => {
      if (away) throw new StoreUnavailableError("the store is away (injected)");
    });
    try {
      typist.edit(ids[0]!, "draft, typed while A could not lock it");
      // Well inside the coalescing window (1.5 s): nothing of it is in the log yet.
      await pause(700);
      expect(reader.get(ids[0]!)?.text).toBe("draft");
      away = false;
      await until(() => reader.get(ids[0]!)?.text === "draft, typed while A could not lock it");
    } finally {
      restore();
    }
    const log = await b.services.store.readThread(threadId, 0);
    expect(log.some((e) => e.type === "queue.item-edit-locked")).toBe(true);
  });

  it("typed on A, A's commit of the typing refused as unavailable once (injected): A keeps its edit lock while the commit waits to be tried again, so no writer elsewhere sees the typing unlocked; the typing lands", async () => {
    const { threadId, id, typist } = await oneItemOnBoth("draft");
    let failures = 0;
    let away = true;
    const restore = holdCommands(a, (c) => c.type === "queue.edit" && c.via === "document", async () => {
      if (!away) return;
      failures++;
      throw new StoreUnavailableError("the store is away (injected)");
    });
    try {
      typist.edit(id, "draft, typed while the store was away");
      // Past the end of the typing's window (the coalescing window, or the presence's 3 s), when
      // A commits what was typed and ends its lock: every commit fails until then.
      await pause(4_000);
      away = false;
      await typist.flush();
    } finally {
      restore();
    }
    expect(failures).toBeGreaterThan(0);
    const log = await a.services.store.readThread(threadId, 0);
    const edited = log.findIndex((e) => e.type === "queue.item-edited" && e.payload.text === "draft, typed while the store was away");
    const ended = log.findIndex((e) => e.type === "queue.item-edit-locked" && e.payload.until === null);
    // Before, the lock was ended between two attempts, with the typing not in the log.
    expect({ typed: edited >= 0, lockEndedBeforeTheTyping: ended >= 0 && ended < edited }).toEqual({ typed: true, lockEndedBeforeTheTyping: false });
  });

  it("typed on A while A's edit lock is held up (injected delay), B catching up with an API edit it missed (A's events to B dropped: injected): B does not write the log's older text over keystrokes the lock does not cover yet", async () => {
    const { threadId, id, typist, reader } = await oneItemOnBoth("v0");
    const undrop = dropEvents(a, threadId);
    const [gate, release] = latch();
    const unhold = holdCommands(a, (c) => c.type === "queue.editLock" && c.forMs > 0, () => gate);
    try {
      // A writes the API's text into the documents; B's replica has it, B's state not the edit.
      await exec(a, threadId, { type: "queue.edit", queueItemId: id, text: "v1" });
      await until(() => typist.get(id)?.text === "v1" && reader.get(id)?.text === "v1");
      typist.edit(id, "v2");
      await pause(300);
      // A command on B shows B the gap: B catches up, and its writer of the missed edit's text
      // merges the stored document. The keystrokes must not be there before their lock is in the log.
      await addItem(b, threadId, "another");
      await pause(500);
      release();
      await typist.flush();
      expect(typist.get(id)?.text).toBe("v2");
    } finally {
      release();
      unhold();
      undrop();
    }
    await pause(2_000); // longer than the coalescing window: a commit of an older text would have landed
    expect(editsIn(await b.services.store.readThread(threadId, 0))).toEqual(["v1", "v2"]);
    await until(
      () => [typist, reader].every((q) => q.get(id)?.text === "v2"),
      () => [typist, reader].map((q) => q.get(id)?.text),
    );
  });

  it("typed on A into one item while the API edits another on A, the keystrokes' edit lock and the edit decided in one append (A's thread busy, and no cap on a commit's wait for local readers: injected): both are answered, and B gets both texts", async () => {
    const { threadId, ids } = await createThread(a, ["v0", "other"]);
    const [typed, edited] = [ids[0]!, ids[1]!];
    const typist = await open(a, threadId, "ann");
    const reader = await open(b, threadId, "bob");
    await until(() => typist.get(typed)?.text === "v0" && reader.get(edited)?.text === "other");
    // The thread's lane is busy with a slow append: the lock and the edit wait in its mailbox
    // and go as one chain. The edit is answered once its text is written into the document,
    // and that write must not wait for the lock's answer, which comes after it (the same append).
    // The feed's cap on how long a commit's answer waits for local readers is taken away, so
    // such a wait shows as a hang rather than as a second's delay.
    const feed = a.services.engine.feed;
    const committedHere = feed.committedHere;
    const readers = (feed as unknown as { localReaders: Set<(events: readonly StoredEvent[]) => Promise<void> | undefined> }).localReaders;
    feed.committedHere = (events) => {
      const reads = [...readers].flatMap((read) => read(events) ?? []);
      return reads.length === 0 ? undefined : Promise.all(reads).then(() => undefined);
    };
    const store = a.services.store;
    const appendChain = store.appendChain;
    const [gate, letGo] = latch();
    let held = false;
    store.appendChain = async (requests) => {
      if (!held && requests.some((r) => r.threadId === threadId)) {
        held = true;
        await gate;
      }
      return appendChain.call(store, requests);
    };
    let answered: Promise<unknown>;
    try {
      const paused = exec(a, threadId, { type: "queue.pause" });
      await until(() => held);
      typist.edit(typed, "v0, typed");
      answered = exec(a, threadId, { type: "queue.edit", queueItemId: edited, text: "other, edited" });
      await pause(300);
      letGo();
      await paused;
    } finally {
      letGo();
      store.appendChain = appendChain;
    }
    try {
      await withTimeout(answered, 10_000, "the API edit was never answered");
      await withTimeout(typist.flush(), 10_000, "the typing was never acknowledged");
    } finally {
      feed.committedHere = committedHere;
    }
    await until(
      () => reader.get(edited)?.text === "other, edited" && reader.get(typed)?.text === "v0, typed",
      () => reader.entries.map((e) => e.text),
    );
    const log = await b.services.store.readThread(threadId, 0);
    expect(editsIn(log).sort()).toEqual(["other, edited", "v0, typed"]);
  });

  it("typed on A into an item B already claimed, unheard of on A (B's bus messages dropped, A's drain held: injected): the answer to A's sync shows the typing undone, and the log has no edit", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = await open(a, threadId, "ann");
    await until(() => typist.get(ids[0]!)?.text === "draft");
    // A hears nothing B publishes about this thread (a bus outage as A sees it), and A's
    // own drain waits: B's claim is one A learns of only from the log.
    const bus = b.services.bus;
    const publish = bus.publish;
    bus.publish = (channel, message) =>
      channel === channels.doc(threadId) || (channel === channels.events && Buffer.from(message).toString().includes(threadId))
        ? Promise.resolve()
        : publish.call(bus, channel, message);
    const [held, release] = latch();
    const unhold = holdCommands(a, (c) => c.type === "drain.claim", () => held);
    try {
      await exec(b, threadId, { type: "agent.session", status: "ready" }, "agent:a");
      await eventually(async () => expect(claimOf(await b.services.store.readThread(threadId, 0))).toBeDefined());
      typist.edit(ids[0]!, "draft, and more");
      await typist.flush();
      // The answer came after the refusal's undo: the device shows the text the log keeps.
      expect(typist.get(ids[0]!)?.text).toBe("draft");
    } finally {
      bus.publish = publish;
      release();
      unhold();
    }
    const log = await b.services.store.readThread(threadId, 0);
    expect(log.some((e) => e.type === "queue.item-edited")).toBe(false);
    expect(claimOf(log)?.message.text).toBe("draft");
  });

  it("typed on A into an item A's replica has from B's document write but not yet from the log (B's events to A dropped: injected): acknowledged, it is in the log", async () => {
    const { threadId } = await createThread(a, []);
    const typist = await open(a, threadId, "ann");
    // B holds the document too: B writes the item it adds into it.
    await open(b, threadId, "bob");
    // A hears B's document updates but none of B's events about this thread.
    const restore = dropEvents(b, threadId);
    try {
      const id = await addItem(b, threadId, "draft");
      await until(() => typist.get(id)?.text === "draft");
      typist.edit(id, "draft, typed at once");
      await typist.flush();
      expect(typist.get(id)?.text).toBe("draft, typed at once");
      const log = await a.services.store.readThread(threadId, 0);
      expect(editsIn(log)).toEqual(["draft, typed at once"]);
    } finally {
      restore();
    }
  });

  it("moved on A, an item A's replica has from B's document write but not yet from the log (B's events to A dropped: injected): the move is in the log, and the item stays in A's document", async () => {
    const { threadId, ids } = await createThread(a, ["first"]);
    const mover = await open(a, threadId, "ann");
    await open(b, threadId, "bob");
    const restore = dropEvents(b, threadId);
    try {
      const id = await addItem(b, threadId, "second");
      await until(() => mover.get(id)?.text === "second");
      await mover.move(id, null);
      await eventually(async () => {
        const log = await a.services.store.readThread(threadId, 0);
        expect(log.some((e) => e.type === "queue.item-moved" && e.payload.queueItemId === id)).toBe(true);
      });
      await until(() => mover.entries.map((e) => e.id).join() === [id, ids[0]].join(), () => mover.entries.map((e) => e.id));
    } finally {
      restore();
    }
  });

  it("acknowledged on A, then edited through the API on B: the log takes the typed text, then the API's, and both replicas end on the API's", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    await until(() => typist.get(ids[0]!)?.text === "draft" && watcher.get(ids[0]!)?.text === "draft");
    typist.edit(ids[0]!, "typed first");
    await typist.flush();
    await exec(b, threadId, { type: "queue.edit", queueItemId: ids[0]!, text: "edited through the API after" });
    // A ends its edit lock once the typing is committed: by then any late commit has landed.
    await until(async () => (await a.services.store.readThread(threadId, 0)).some((e) => e.type === "queue.item-edit-locked" && e.payload.until === null));
    const log = await a.services.store.readThread(threadId, 0);
    const texts = editsIn(log);
    expect(texts).toEqual(["typed first", "edited through the API after"]);
    await until(
      () => [typist, watcher].every((q) => q.get(ids[0]!)?.text === "edited through the API after"),
      () => [typist, watcher].map((q) => q.get(ids[0]!)?.text),
    );
  });

  it("B's replica missed A's keystrokes (its bus messages dropped, injected) and follows A's commit: it does not commit its older text over the acknowledged one", async () => {
    const { threadId, ids } = await createThread(a, ["hello"]);
    const typist = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    await until(() => typist.get(ids[0]!)?.text === "hello" && watcher.get(ids[0]!)?.text === "hello");
    // Redis pub/sub is at most once: A's document updates for this thread never reach B.
    const bus = a.services.bus;
    const publish = bus.publish;
    bus.publish = (channel, message) => (channel === channels.doc(threadId) ? Promise.resolve() : publish.call(bus, channel, message));
    try {
      typist.edit(ids[0]!, "hello world");
      await typist.flush();
      // B applies A's commit, finds its document's text different, and commits what it has
      // after its coalescing window: merged with the stored document, that is A's text.
      await until(() => watcher.get(ids[0]!)?.text === "hello world", () => watcher.get(ids[0]!)?.text);
      await until(async () => (await a.services.store.readThread(threadId, 0)).some((e) => e.type === "queue.item-edit-locked" && e.payload.until === null));
    } finally {
      bus.publish = publish;
    }
    const log = await b.services.store.readThread(threadId, 0);
    expect(editsIn(log)).toEqual(["hello world"]);
    expect(typist.get(ids[0]!)?.text).toBe("hello world");
  });

  it("B commits typing it got from A by bus that A has not stored yet (A's document writes held, A's events to B dropped: injected): the stored document holds the text the log took", async () => {
    const { threadId, ids } = await createThread(a, ["hello"]);
    const typist = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    await until(() => typist.get(ids[0]!)?.text === "hello" && watcher.get(ids[0]!)?.text === "hello");
    // B hears of A's commit only later, by catching up: by then it holds newer keystrokes.
    const restore = dropEvents(a, threadId);
    const sql = a.services.db.sql;
    const query = sql.query;
    const [held, release] = latch();
    try {
      typist.edit(ids[0]!, "hello world");
      await typist.flush();
      // From here A stores nothing of its document: its next keystrokes reach B by bus only.
      sql.query = (async (text: string, params?: unknown[]) => {
        if (text.includes(`insert into "DocUpdate"`)) await held;
        return query.call(sql, text, params);
      }) as typeof sql.query;
      typist.edit(ids[0]!, "hello world, again");
      await until(() => watcher.get(ids[0]!)?.text === "hello world, again", () => watcher.get(ids[0]!)?.text);
      restore();
      // The next event reaches B with a gap: B catches up, follows A's commit, finds its text
      // newer, and commits it over A's.
      await exec(a, threadId, { type: "thread.rename", title: "renamed" });
      await until(async () =>
        (await b.services.store.readThread(threadId, 0)).some((e) => e.type === "queue.item-edited" && e.payload.text === "hello world, again"),
      );
      // What any replica merging the store (one the bus left behind, a restarted instance) starts from.
      const stored = await b.services.db.sql.query<{ bytes: Uint8Array }>(
        `select "update" as "bytes" from "DocUpdate" where "threadId" = $1 union all select "state" from "DocState" where "threadId" = $1`,
        [threadId],
      );
      const doc = new Y.Doc();
      for (const row of stored) Y.applyUpdate(doc, row.bytes);
      expect((doc.getMap("items").get(ids[0]!) as Y.Map<unknown>).get("text")!.toString()).toBe("hello world, again");
    } finally {
      restore();
      sql.query = query;
      release();
    }
  });

  it("edited through the API on A, typed on A over that text while B's writer of the API text waits for the lease (held, injected): B does not write the API's text over the typing", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    await until(() => typist.get(ids[0]!)?.text === "draft" && watcher.get(ids[0]!)?.text === "draft");
    // B writes the API's text too (it heard of the edit), but only after the test lets it; A's
    // commit of the typing waits until B's writer has had its turn.
    const [held, release] = latch();
    const [writerDone, tried] = latch();
    const restoreWriter = aroundTextWriter(b, threadId, async (write) => {
      await held;
      try {
        return await write();
      } finally {
        tried();
      }
    });
    const unhold = holdCommands(a, (c) => c.type === "queue.edit" && c.via === "document", () => writerDone);
    try {
      await exec(a, threadId, { type: "queue.edit", queueItemId: ids[0]!, text: "edited through the API" });
      await until(() => typist.get(ids[0]!)?.text === "edited through the API", () => typist.get(ids[0]!)?.text);
      typist.edit(ids[0]!, "edited through the API, then typed");
      // The keystrokes reach B (after A's edit lock is in the log); then B's writer runs.
      await until(() => watcher.get(ids[0]!)?.text === "edited through the API, then typed", () => watcher.get(ids[0]!)?.text);
      release();
      await typist.flush();
    } finally {
      release();
      restoreWriter();
      unhold();
    }
    await until(
      () => [typist, watcher].every((q) => q.get(ids[0]!)?.text === "edited through the API, then typed"),
      () => [typist, watcher].map((q) => q.get(ids[0]!)?.text),
    );
    const log = await b.services.store.readThread(threadId, 0);
    expect(editsIn(log)).toEqual(["edited through the API", "edited through the API, then typed"]);
  });

  it("an item added on A is removed on A while B's writer of it is between its reads of the log and the store (injected): B does not create it again", async () => {
    const { threadId } = await createThread(a, []);
    const typist = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    const lease = b.services.lease;
    const tryWith = lease.tryWith;
    const [held, release] = latch();
    let writing = false;
    const [writerDone, tried] = latch();
    lease.tryWith = (async <T>(key: string, fn: () => Promise<T>) => {
      if (key !== `collab:text:${threadId}`) return tryWith.call(lease, key, fn);
      await held;
      try {
        return await tryWith.call(lease, key, async () => {
          writing = true;
          try {
            return await fn();
          } finally {
            writing = false;
          }
        });
      } finally {
        tried();
      }
    }) as typeof lease.tryWith;
    // Right after B's writer read the log, the item is removed and its map's deletion stored.
    const store = b.services.store;
    const readThread = store.readThread;
    let id = "";
    let struck = false;
    const storedHas = async (itemId: string) => {
      const rows = await b.services.db.sql.query<{ bytes: Uint8Array }>(
        `select "state" as "bytes" from "DocState" where "threadId" = $1 union all select "update" from "DocUpdate" where "threadId" = $1`,
        [threadId],
      );
      const doc = new Y.Doc();
      for (const row of rows) Y.applyUpdate(doc, row.bytes);
      return doc.getMap("items").has(itemId);
    };
    store.readThread = async (thread, after) => {
      const events = await readThread.call(store, thread, after);
      if (writing && !struck && thread === threadId) {
        struck = true;
        await exec(a, threadId, { type: "queue.remove", queueItemId: id });
        await until(async () => !(await storedHas(id)));
      }
      return events;
    };
    try {
      id = await addItem(a, threadId, "added, then removed");
      await until(() => typist.get(id) !== undefined && watcher.get(id) !== undefined);
      release();
      await writerDone;
    } finally {
      release();
      lease.tryWith = tryWith;
      store.readThread = readThread;
    }
    expect(struck).toBe(true);
    await until(
      () => typist.get(id) === undefined && watcher.get(id) === undefined,
      () => [typist, watcher].map((q) => q.entries.map((e) => e.id)),
    );
  });

  it("typed on A and committed while B's writer of an API text waits for the answer to its read of the log (a paused instance: injected): B does not write the log's older text over it", async () => {
    const { threadId, id, typist, reader } = await oneItemOnBoth("v0");
    // B's writer of the API's text goes second (A's has written it), and the answer to its
    // second read of the log reaches it only after A's typing was committed and relayed.
    const [gate, letGo] = latch();
    let reads = -1;
    const restoreWriter = aroundTextWriter(b, threadId, async (write) => {
      await gate;
      reads = 0;
      try {
        return await write();
      } finally {
        reads = -1;
      }
    });
    const store = b.services.store;
    const readThread = store.readThread;
    let struck = false;
    store.readThread = async (thread, after) => {
      const events = await readThread.call(store, thread, after);
      if (thread === threadId && reads >= 0 && ++reads === 2 && !struck) {
        struck = true;
        typist.edit(id, "v1, typed");
        await typist.flush();
        await until(() => reader.get(id)?.text === "v1, typed", () => reader.get(id)?.text);
      }
      return events;
    };
    try {
      await exec(a, threadId, { type: "queue.edit", queueItemId: id, text: "v1" });
      await until(() => typist.get(id)?.text === "v1" && reader.get(id)?.text === "v1");
      letGo();
      await until(() => struck);
      await pause(1_000); // B's writer answered with the older log
    } finally {
      letGo();
      restoreWriter();
      store.readThread = readThread;
    }
    expect(editsIn(await b.services.store.readThread(threadId, 0))).toEqual(["v1", "v1, typed"]);
    await until(
      () => [typist, reader].every((q) => q.get(id)?.text === "v1, typed"),
      () => [typist, reader].map((q) => q.get(id)?.text),
    );
  });

  it("typed on A and then edited through the API on A while B heard nothing (A's bus messages dropped, A's text writer held: injected): B catching up does not commit the typed text over the API's", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    await until(() => typist.get(ids[0]!)?.text === "draft" && watcher.get(ids[0]!)?.text === "draft");
    // The bus outage, as B sees it: nothing A publishes about this thread arrives.
    const bus = a.services.bus;
    const publish = bus.publish;
    const aboutThread = (channel: string, message: Uint8Array) =>
      channel === channels.doc(threadId) || (channel === channels.events && Buffer.from(message).toString().includes(threadId));
    bus.publish = (channel, message) => (aboutThread(channel, message) ? Promise.resolve() : publish.call(bus, channel, message));
    // The API's text is not in any document yet: its writer (on A) holds the per-thread lease and waits.
    const lease = a.services.lease;
    const tryWith = lease.tryWith;
    const [held, release] = latch();
    lease.tryWith = <T>(key: string, fn: () => Promise<T>) =>
      tryWith.call(lease, key, key === `collab:text:${threadId}` ? async () => ((await held), fn()) : fn) as ReturnType<typeof lease.tryWith<T>>;
    try {
      typist.edit(ids[0]!, "typed during the outage");
      await typist.flush();
      await exec(a, threadId, { type: "queue.edit", queueItemId: ids[0]!, text: "edited through the API" });
      bus.publish = publish;
      // The next event reaches B with a gap: B catches up (merges the stored document, which has
      // the typing, and reads both edits), and would commit what its document holds over the log's.
      await exec(a, threadId, { type: "thread.rename", title: "renamed" });
      await until(() => watcher.get(ids[0]!)?.text === "typed during the outage", () => watcher.get(ids[0]!)?.text);
      // Longer than a coalescing window: a commit B scheduled has landed by now.
      await pause(3_500);
    } finally {
      bus.publish = publish;
      release();
      lease.tryWith = tryWith;
    }
    await until(
      () => [typist, watcher].every((q) => q.get(ids[0]!)?.text === "edited through the API"),
      () => [typist, watcher].map((q) => q.get(ids[0]!)?.text),
    );
    const log = await b.services.store.readThread(threadId, 0);
    expect(editsIn(log)).toEqual(["typed during the outage", "edited through the API"]);
  });

  it("typed on a device while it was offline, over a text the API replaced meanwhile: on reconnecting its typing is refused (the device shows the API's text), never merged with it (an edit that only deletes too); typed offline over the log's text, it is kept", async () => {
    const { threadId, ids } = await createThread(a, ["v3"]);
    const id = ids[0]!;
    const device = await open(a, threadId, "ann");
    const watcher = await open(b, threadId, "bob");
    await until(() => device.get(id)?.text === "v3" && watcher.get(id)?.text === "v3");
    /** The device types `typed` offline while the API replaces the text with `api`; then it reconnects and flushes. */
    const typedOfflineOver = async (typed: string, api: string) => {
      device.provider.disconnect();
      device.edit(id, typed);
      await exec(b, threadId, { type: "queue.edit", queueItemId: id, text: api });
      await until(() => watcher.get(id)?.text === api, () => watcher.get(id)?.text);
      device.provider.connect();
      await device.whenSynced();
      await device.flush();
      await until(() => device.get(id)?.text === api, () => device.get(id)?.text);
      await pause(2_000); // longer than the coalescing window: a commit of the merge would have landed
    };
    // The device's "4" and the API's "12" go after the same "v": a CRDT merge makes "v412" or
    // "v124", a text nobody wrote. The device's typing was on "v3", which the log no longer has.
    await typedOfflineOver("v4", "v12");
    const log = await a.services.store.readThread(threadId, 0);
    expect(editsIn(log)).toEqual(["v12"]);
    await until(
      () => [device, watcher].every((q) => q.get(id)?.text === "v12"),
      () => [device, watcher].map((q) => q.get(id)?.text),
    );

    // Offline again, now over the text the log has: that typing is the device's, and kept.
    device.provider.disconnect();
    device.edit(id, "v12, typed on the plane");
    device.provider.connect();
    await device.whenSynced();
    await device.flush();
    const after = await a.services.store.readThread(threadId, 0);
    expect(editsIn(after)).toEqual(["v12", "v12, typed on the plane"]);
    await until(() => watcher.get(id)?.text === "v12, typed on the plane", () => watcher.get(id)?.text);

    // An API edit that only deletes is held to the same rule: its write also inserts, so the
    // device's state vector shows it lacks it (merged, this would be "v12, typed!!").
    await until(() => device.get(id)?.text === "v12, typed on the plane");
    await typedOfflineOver("v12, typed on the plane!!", "v12, typed");
    const last = await a.services.store.readThread(threadId, 0);
    expect(editsIn(last)).toEqual(["v12", "v12, typed on the plane", "v12, typed"]);
  });

  it("typed on a device while it was offline, over a text the API replaced meanwhile, its instance's replica unloaded and loaded again from the store meanwhile (idle): on reconnecting its typing is refused, never merged", async () => {
    // A replica loaded from the store never saw the write of the API's text happen: it still
    // knows the device lacks it (`npm run chaos`, kill-and-restart-redis seed 13 merged "v1" and "v2" into "v21").
    const idle = await startInstancePair(redisUrl, { editCoalesceMs: 1_500, docIdleMs: 50 });
    try {
      const { threadId, ids } = await createThread(idle.a, ["v3"]);
      const id = ids[0]!;
      const device = await open(idle.a, threadId, "ann");
      const watcher = await open(idle.b, threadId, "bob");
      await until(() => device.get(id)?.text === "v3" && watcher.get(id)?.text === "v3");
      const unloads = async () => {
        const metric = await idle.a.services.metrics.getSingleMetric("turnqueue_collab_document_loads_total")!.get();
        return metric.values.find((v) => v.labels.event === "unload")?.value ?? 0;
      };
      const before = await unloads();
      device.provider.disconnect();
      device.edit(id, "v4");
      await until(async () => (await unloads()) > before);
      await exec(idle.b, threadId, { type: "queue.edit", queueItemId: id, text: "v12" });
      await until(() => watcher.get(id)?.text === "v12", () => watcher.get(id)?.text);
      device.provider.connect();
      await device.whenSynced();
      await device.flush();
      await until(() => device.get(id)?.text === "v12", () => device.get(id)?.text);
      await pause(2_000); // longer than the coalescing window: a commit of the merge would have landed
      expect(editsIn(await idle.a.services.store.readThread(threadId, 0))).toEqual(["v12"]);
      await until(
        () => [device, watcher].every((q) => q.get(id)?.text === "v12"),
        () => [device, watcher].map((q) => q.get(id)?.text),
      );
    } finally {
      await idle.close();
    }
  });

  it("edited through the API, typed on A over it, B's writer of the API text deferred by A's edit lock (B's writer held until the lock is in the log: injected) and A's commit of the typing held past the lock's end (injected): B revokes the typing in the log before writing the API text over it, the commit is refused, and the device is never told the log keeps it", async () => {
    // An edit lock that lapses while its typist's commit is stuck (`npm run chaos`, restart-postgres
    // seed 40: "v2" typed; B wrote "v1" over it once the lock lapsed; "v2" then landed and was acknowledged
    // while the devices showed "v1").
    const { threadId, id, typist, reader: watcher } = await oneItemOnBoth("v0");

    // B's writer of the API's text waits (an outage made its reads fail) until A's lock is in the log.
    const [writerGate, letWriterGo] = latch();
    let writerRuns = 0;
    const restoreWriter = aroundTextWriter(b, threadId, async (write) => {
      await writerGate;
      writerRuns++;
      return write();
    });
    // A's commit of the typing is in flight (the store went away under it) until the test lets it land.
    const [commitGate, letCommitGo] = latch();
    let commitHeld = false;
    const unhold = holdCommands(a, (c) => c.type === "queue.edit" && c.via === "document", async () => {
      commitHeld = true;
      await commitGate;
    });
    const shown = () => [typist, watcher].map((q) => q.get(id)?.text);
    let flushed: Promise<void> | undefined;
    let whileStuck: { revoked: boolean; devices: (string | undefined)[] } | undefined;
    let atAnswer: string | undefined;
    try {
      // The API's "v1" (v4 in the chaos history); A's writer puts it into the documents (B's is held).
      await exec(a, threadId, { type: "queue.edit", queueItemId: id, text: "v1" });
      await until(() => typist.get(id)?.text === "v1" && watcher.get(id)?.text === "v1", shown);

      // c0 types "v2" on A; A's lock lands (chaos v8) and the keystrokes reach B.
      typist.edit(id, "v2");
      await until(async () =>
        (await b.services.store.readThread(threadId, 0)).some((e) => e.type === "queue.item-edit-locked" && e.payload.until !== null),
      );
      await until(() => watcher.get(id)?.text === "v2", () => watcher.get(id)?.text);
      // The device asks for its acknowledgement: A's commit of "v2" starts and is held.
      flushed = typist.flush();
      await until(() => commitHeld);

      // B's writer runs now: A's lock defers it (`typedElsewhere` → `writeLater`) until the lock's end.
      letWriterGo();
      // Past the lock's end (plus the writer's retry delay), A's commit still held: B revoked the
      // lapsed typing in the log, then wrote the API's text over it on every device.
      await until(() => shown().every((t) => t === "v1"), shown, a.services.config.editLockMs + 5_000).catch(() => {});
      expect(writerRuns).toBeGreaterThan(0);
      whileStuck = {
        revoked: (await b.services.store.readThread(threadId, 0)).some((e) => e.type === "queue.item-typing-revoked"),
        devices: shown(),
      };

      // A's commit of "v2" lands (chaos v10): refused, and the device's flush is answered.
      letCommitGo();
      await flushed;
      atAnswer = typist.get(id)?.text;
    } finally {
      letWriterGo();
      letCommitGo();
      restoreWriter();
      unhold();
    }
    // Longer than the coalescing window (1.5 s): a commit of the revoked typing would have landed.
    await pause(3_500);
    const log = await b.services.store.readThread(threadId, 0);
    // What the agent gets.
    await exec(b, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    const claim = await eventually(async () => {
      const found = claimOf(await b.services.store.readThread(threadId, 0));
      expect(found).toBeDefined();
      return found!;
    });
    expect({ whileStuck, atAnswer, edits: editsIn(log), dispatched: claim.message.text, devices: shown() }).toEqual({
      whileStuck: { revoked: true, devices: ["v1", "v1"] },
      atAnswer: "v1",
      edits: ["v1"],
      dispatched: "v1",
      devices: ["v1", "v1"],
    });
  });
});
