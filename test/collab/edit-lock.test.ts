import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EDITING } from "../../src/contract/document.js";
import type { StoredEvent } from "../../src/domain/index.js";
import { redisAvailable, redisUrl } from "../cluster/redis.js";
import { hasPostgres } from "../support/postgres.js";
import { deferred } from "../cluster/deferred.js";
import { eventually, until } from "../support/poll.js";
import type { TestServer } from "../support/server.js";
import { connect, createThread, exec, startCollabServer, startInstancePair, synced } from "./harness.js";

const claimOf = (log: StoredEvent[]) => {
  const claim = log.find((e) => e.type === "queue.item-send-started");
  return claim?.type === "queue.item-send-started" ? claim.payload : undefined;
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("edit lock: an item someone is typing in is not sent until they stop", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCollabServer();
  });
  afterAll(() => server?.close());

  it("a second device's presence names the item and its keystrokes keep coming: the queue waits at it, then sends the finished text", async () => {
    const { threadId, ids } = await createThread(server, ["fix the parser", "then the docs"]);
    const watcher = connect(server, threadId, await server.token("user", "local", "ann"));
    const typist = connect(server, threadId, await server.token("user", "local", "bob"));
    await synced([watcher, typist]);
    typist.provider.awareness.setLocalStateField(EDITING, ids[0]);
    await until(() => [...watcher.provider.awareness.getStates().values()].some((s) => s[EDITING] === ids[0]));

    const words = " and its tests, then run them all".split(/(?= )/);
    typist.text(ids[0]).insert(typist.text(ids[0]).length, words[0]);
    await until(() => watcher.text(ids[0]).toString().endsWith(words[0]));
    // The agent is ready while the typing goes on.
    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    for (const word of words.slice(1)) {
      await pause(150);
      typist.text(ids[0]).insert(typist.text(ids[0]).length, word);
      const log = await server.services.store.readThread(threadId, 0);
      // Neither the item being typed in nor the one behind it (order holds).
      expect(claimOf(log)).toBeUndefined();
    }
    const log = await eventually(async () => {
      const events = await server.services.store.readThread(threadId, 0);
      expect(claimOf(events)).toBeDefined();
      return events;
    });
    expect(claimOf(log)).toMatchObject({ queueItemId: ids[0], message: { text: "fix the parser and its tests, then run them all" } });
    expect(log.some((e) => e.type === "queue.item-edit-locked")).toBe(true);
    watcher.destroy();
    typist.destroy();
  });

  it("a viewer's presence naming an item locks nothing (its writes are undone, not keystrokes)", async () => {
    const { threadId, ids } = await createThread(server, ["go"]);
    const viewer = connect(server, threadId, await server.token("viewer", "local", "vera"));
    await synced([viewer]);
    viewer.provider.awareness.setLocalStateField(EDITING, ids[0]);
    viewer.text(ids[0]).insert(2, " now");
    await exec(server, threadId, { type: "agent.session", status: "ready" }, "agent:a");
    const log = await eventually(async () => {
      const events = await server.services.store.readThread(threadId, 0);
      expect(claimOf(events)).toBeDefined();
      return events;
    });
    expect(claimOf(log)?.message.text).toBe("go");
    expect(log.some((e) => e.type === "queue.item-edit-locked")).toBe(false);
    viewer.destroy();
  });
});

const hasRedis = await redisAvailable();
/** `npm test` runs a few; TURNQUEUE_EDIT_RACE_RUNS=50 (npm run test:edit-race) the fifty. */
const RUNS = Number(process.env.TURNQUEUE_EDIT_RACE_RUNS ?? 8);

describe.runIf(hasPostgres && hasRedis)("the edit race on two instances (PostgreSQL + Redis)", () => {
  let pair: Awaited<ReturnType<typeof startInstancePair>>;
  let a: TestServer;
  let b: TestServer;
  beforeAll(async () => {
    // The default coalescing window: an edit typed on A waits that long before A commits it.
    pair = await startInstancePair(redisUrl, { editCoalesceMs: 300 });
    ({ a, b } = pair);
  });
  afterAll(() => pair?.close());

  it("a keystroke reaches the typist's neighbours on its own instance while its lock is still being written, and the other instance only once the lock is in the log (fault injected: A's lock held)", async () => {
    const { threadId, ids } = await createThread(a, ["draft"]);
    const typist = connect(a, threadId, await a.token("user", "local", "ann"));
    const neighbour = connect(a, threadId, await a.token("user", "local", "bob"));
    const farAway = connect(b, threadId, await b.token("user", "local", "cid"));
    await synced([typist, neighbour, farAway]);
    const mapId = (d: typeof typist) => JSON.stringify((d.item(ids[0]) as unknown as { _item: { id: unknown } | null })._item?.id);
    await until(() => mapId(typist) === mapId(neighbour) && mapId(typist) === mapId(farAway));
    const held = deferred();
    const release = deferred();
    const engine = a.services.engine;
    const execute = engine.execute.bind(engine);
    engine.execute = async (id, command, options) => {
      if (id === threadId && command.type === "queue.editLock" && command.forMs > 0) {
        held.resolve();
        await release.promise;
      }
      return execute(id, command, options);
    };
    try {
      typist.text(ids[0]).insert(5, ", then the tests");
      await held.promise;
      await until(() => neighbour.text(ids[0]).toString() === "draft, then the tests");
      // Published after the keystroke on the same bus connection, so it reaches B after the
      // keystroke unless the keystroke is held for its lock.
      typist.provider.awareness.setLocalStateField("user", { name: "ann" });
      await until(() => (farAway.provider.awareness.getStates().get(typist.doc.clientID) as { user?: unknown } | undefined)?.user !== undefined);
      expect(farAway.text(ids[0]).toString()).toBe("draft");
      release.resolve();
      await until(() => farAway.text(ids[0]).toString() === "draft, then the tests");
      const log = await a.services.store.readThread(threadId, 0);
      expect(log.some((e) => e.type === "queue.item-edit-locked")).toBe(true);
    } finally {
      release.resolve();
      engine.execute = execute;
      for (const device of [typist, neighbour, farAway]) device.destroy();
    }
  });

  it(`typed on A, seen by a device on B, claimed on B as soon as the agent is ready: the agent gets the edit (${RUNS} runs, zero stale)`, { timeout: 40_000 + RUNS * 8_000 }, async () => {
    const stale: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      const { threadId, ids } = await createThread(a, ["draft"]);
      const typist = connect(a, threadId, await a.token("user", "local", "ann"));
      const watcher = connect(b, threadId, await b.token("user", "local", "bob"));
      await synced([typist, watcher]);
      // Both instances wrote the item into their replica when they loaded it; typing starts
      // once that has settled to one map everywhere (typing into the losing map is lost,
      // which is the loading race, not this one).
      const mapId = (d: typeof typist) => JSON.stringify((d.item(ids[0]) as unknown as { _item: { id: unknown } | null })._item?.id);
      await until(() => mapId(typist) === mapId(watcher));
      const final = `draft, run ${run}: rename the module and update its imports`;
      typist.text(ids[0]).insert(5, final.slice(5));
      // Acknowledged: another device got it through the servers.
      await until(
        () => watcher.text(ids[0]).toString() === final,
        () => ({ run, watcher: watcher.text(ids[0]).toString(), typist: typist.text(ids[0]).toString(), synced: [typist.provider.synced, watcher.provider.synced] }),
      );
      await exec(b, threadId, { type: "agent.session", status: "ready" }, "agent:a");
      const claim = await eventually(async () => {
        const found = claimOf(await b.services.store.readThread(threadId, 0));
        expect(found).toBeDefined();
        return found!;
      });
      if (claim.message.text !== final) stale.push(`run ${run}: ${claim.message.text}`);
      typist.destroy();
      watcher.destroy();
    }
    expect(stale).toEqual([]);
  });
});
