import { TRPCClientError } from "@trpc/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgent, TurnStartError, type Agent } from "../../client/agent.js";
import { createTurnqueueClient, type ThreadQueue, type TurnqueueClient } from "../../client/index.js";
import type * as Y from "yjs";
import { eventually as poll } from "../support/poll.js";
import { startTestServer, type TestServer } from "../support/server.js";

/** Waits (no timing asserted) until every replica shows what the test expects. */
const eventually = (assertion: () => void | Promise<void>) => poll(assertion, 30_000);

const texts = (q: ThreadQueue) => q.entries.map((e) => e.text);

describe("openThreadQueue: a live queue on the thread's Yjs document (real server, real WebSockets)", { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: TurnqueueClient;
  let bob: TurnqueueClient;

  beforeAll(async () => {
    server = await startTestServer();
    alice = createTurnqueueClient({ url: server.url, token: await server.token("user", "acme", "alice") });
    bob = createTurnqueueClient({ url: server.url, token: await server.token("user", "acme", "bob") });
  });
  afterAll(async () => {
    await alice?.close();
    await bob?.close();
    await server?.close();
  });

  /** A fresh thread seen by two devices, both synced. */
  async function twoDevices(title: string): Promise<[ThreadQueue, ThreadQueue, string]> {
    const { threadId } = await alice.thread.create.mutate({ title });
    const a = alice.openThreadQueue(threadId, { presence: { name: "alice" } });
    const b = bob.openThreadQueue(threadId, { presence: { name: "bob" } });
    await Promise.all([a.whenSynced(), b.whenSynced()]);
    return [a, b, threadId];
  }

  const projection = async (threadId: string) =>
    (await alice.thread.get.query({ threadId })).queue.items.map((i) => ({ id: i.queueItemId, text: i.text }));

  it("shows another device's adds, moves and edits live, in (position, id) order, and the server agrees", async () => {
    const [a, b, threadId] = await twoDevices("live");
    let changes = 0;
    b.on("change", () => changes++);

    const one = await a.add("one");
    const two = await a.add("two");
    const three = await a.add("three");
    await eventually(() => expect(texts(b)).toEqual(["one", "two", "three"]));
    expect(b.entries.map((e) => e.status)).toEqual(["pending", "pending", "pending"]);
    expect(b.entries.map((e) => e.id)).toEqual([one.queueItemId, two.queueItemId, three.queueItemId]);

    await a.move(three.queueItemId, null);
    await eventually(() => expect(texts(b)).toEqual(["three", "one", "two"]));
    await a.move(one.queueItemId, two.queueItemId);
    await eventually(() => expect(texts(b)).toEqual(["three", "two", "one"]));

    a.edit(two.queueItemId, "two, said better");
    await eventually(() => expect(texts(b)).toEqual(["three", "two, said better", "one"]));

    // Document writes became queue.item-moved / queue.item-edited events in the log.
    await eventually(async () =>
      expect(await projection(threadId)).toEqual([
        { id: three.queueItemId, text: "three" },
        { id: two.queueItemId, text: "two, said better" },
        { id: one.queueItemId, text: "one" },
      ]),
    );
    expect(changes).toBeGreaterThan(0);
  });

  it("merges two devices typing into the same item at the same moment", async () => {
    const [a, b] = await twoDevices("typing");
    const { queueItemId } = await a.add("fix the parser");
    await eventually(() => expect(b.get(queueItemId)?.text).toBe("fix the parser"));

    // Both edits happen before either device has heard of the other's: truly concurrent.
    a.edit(queueItemId, "please fix the parser");
    b.edit(queueItemId, "fix the parser and add tests");

    const merged = "please fix the parser and add tests";
    await eventually(() => {
      expect(a.get(queueItemId)?.text).toBe(merged);
      expect(b.get(queueItemId)?.text).toBe(merged);
    });
  });

  it("moves between two items that share one key (written at once by two devices) through the server", async () => {
    const [a, b, threadId] = await twoDevices("ties");
    const [one, two, three] = [await a.add("one"), await a.add("two"), await a.add("three")];
    await eventually(() => expect(texts(b)).toEqual(["one", "two", "three"]));
    // Both devices write the same key into different items before hearing of each other.
    const items = (q: ThreadQueue) => q.doc.getMap<Y.Map<unknown>>("items");
    items(a).get(one.queueItemId)!.set("position", "a5");
    items(b).get(two.queueItemId)!.set("position", "a5");
    await eventually(() => expect(a.entries.slice(1).map((e) => e.position)).toEqual(["a5", "a5"]));
    const tied = a.entries.slice(1).map((e) => e.id); // ties go by id

    await a.move(three.queueItemId, tied[0]);
    const expected = [tied[0], three.queueItemId, tied[1]];
    await eventually(() => {
      expect(a.entries.map((e) => e.id)).toEqual(expected);
      expect(b.entries.map((e) => e.id)).toEqual(expected);
    });
    await eventually(async () => expect((await projection(threadId)).map((i) => i.id)).toEqual(expected));
  });

  it("keeps edits and moves made offline and merges them on reconnect", async () => {
    const [a, b, threadId] = await twoDevices("offline");
    const first = await a.add("first");
    const second = await a.add("second");
    await eventually(() => expect(texts(b)).toEqual(["first", "second"]));

    a.disconnect();
    expect(a.status).toBe("disconnected");
    a.edit(first.queueItemId, "first, written on the train");
    await a.move(second.queueItemId, null);
    b.edit(second.queueItemId, "second, written at the desk");
    await eventually(() => expect(texts(b)).toEqual(["first", "second, written at the desk"]));
    // The offline device still shows its own edits while it waits.
    expect(texts(a)).toEqual(["second", "first, written on the train"]);

    a.connect();
    const expected = ["second, written at the desk", "first, written on the train"];
    await eventually(() => {
      expect(a.status).toBe("connected");
      expect(texts(a)).toEqual(expected);
      expect(texts(b)).toEqual(expected);
    });
    await eventually(async () => expect((await projection(threadId)).map((i) => i.text)).toEqual(expected));
  });

  it("pause, resume and remove go through the server and show on every device", async () => {
    const [a, b] = await twoDevices("controls");
    const keep = await a.add("keep me");
    const drop = await a.add("drop me");
    await eventually(() => expect(texts(b)).toEqual(["keep me", "drop me"]));

    await a.pause();
    await eventually(() => expect(b.state).toMatchObject({ paused: true, pauseReason: "user" }));
    await b.resume();
    await eventually(() => expect(a.state.paused).toBe(false));

    await b.remove(drop.queueItemId);
    await eventually(() => expect(a.entries.map((e) => e.id)).toEqual([keep.queueItemId]));
  });

  it("says why when the server refuses (a message id queued with another text) and when an item is not there", async () => {
    const [a] = await twoDevices("refusals");
    const { queueItemId } = await a.add("waiting for an agent", { messageId: "m-waiting" });
    const refused = await a.add("another text", { messageId: "m-waiting" }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(TRPCClientError);
    expect((refused as TRPCClientError<never>).data).toMatchObject({ code: "CONFLICT", reason: "MESSAGE_ID_REUSED" });
    expect(() => a.edit("no-such-item", "x")).toThrow(/not in the queue/);
    await expect(a.move(queueItemId, "no-such-item")).rejects.toThrow(/not in the queue/);
    expect(a.entries.map((e) => e.text)).toEqual(["waiting for an agent"]);
  });

  it("refuses an edit over the server's text limit before sending it (a 5 MB text), and stays connected", async () => {
    const [a, b] = await twoDevices("too long");
    const { queueItemId } = await a.add("short");
    await eventually(() => expect(texts(a)).toEqual(["short"]));
    expect(() => a.edit(queueItemId, "x".repeat(5 * 1024 * 1024))).toThrow(/at most 100000 characters/);
    a.edit(queueItemId, "short, and still editable");
    await eventually(() => expect(texts(b)).toEqual(["short, and still editable"]));
    expect(a.status).toBe("connected");
  });

  it("shows who else is looking, and which item they edit", async () => {
    const [a, b] = await twoDevices("presence");
    const { queueItemId } = await a.add("look at me");
    await eventually(() => expect(b.peers.map((p) => p.name)).toEqual(["alice"]));
    a.setEditing(queueItemId);
    await eventually(() => expect(b.peers).toEqual([expect.objectContaining({ name: "alice", editing: queueItemId })]));
    a.close();
    await eventually(() => expect(b.peers).toEqual([]));
  });

  it("flush() orders document writes before a tRPC call: the agent gets the arranged order and text", async () => {
    const dana = createTurnqueueClient({ url: server.url, token: await server.token("user", "flush", "dana") });
    const received: string[] = [];
    let agent: Agent | undefined;
    try {
      const { threadId } = await dana.thread.create.mutate({ title: "arrange, then go" });
      const queue = dana.openThreadQueue(threadId);
      await queue.whenSynced();
      agent = runAgent({
        url: server.url,
        token: await server.token("agent", "flush", "runner"),
        autoReady: true,
        async onTurn(turn) {
          received.push(turn.dispatch.message.text);
          await turn.start();
          return { outcome: "completed" };
        },
      });
      await eventually(() => expect(queue.state.session).toBe("ready"));
      await queue.pause();
      const tests = await queue.add("run the tests");
      const lint = await queue.add("fix lint");
      await queue.move(lint.queueItemId, null);
      queue.edit(tests.queueItemId, "run the tests, then push");
      await queue.flush();
      await queue.resume();
      await eventually(() => expect(received).toEqual(["fix lint", "run the tests, then push"]));
    } finally {
      await agent?.close();
      await dana.close();
    }
  });

  it("rides out a server restart: reconnects by itself, keeps edits made while the server was down, duplicates nothing", async () => {
    const [a, b, threadId] = await twoDevices("restart");
    const item = await a.add("before the restart");
    await eventually(() => expect(texts(b)).toEqual(["before the restart"]));

    const restarting = server.restart();
    await eventually(() => expect(a.status).not.toBe("connected"));
    a.edit(item.queueItemId, "before the restart, edited during it");
    server = await restarting;

    await eventually(() => {
      expect(a.status).toBe("connected");
      expect(b.status).toBe("connected");
      expect(texts(b)).toEqual(["before the restart, edited during it"]);
      expect(texts(a)).toEqual(["before the restart, edited during it"]);
    });
    await a.flush();
    await eventually(async () => expect(await projection(threadId)).toEqual([{ id: item.queueItemId, text: "before the restart, edited during it" }]));
    // Adding works on the same client after the restart, and nothing was duplicated.
    await b.add("after the restart");
    await eventually(() => expect(texts(a)).toEqual(["before the restart, edited during it", "after the restart"]));
  });

  it("a failed item shows its reason on every device, and retry sends it", async () => {
    // Its own workspace, so the agent keeps sessions ready only on this test's thread.
    const carol = createTurnqueueClient({ url: server.url, token: await server.token("user", "retry", "carol") });
    const attempts: string[] = [];
    let agent: Agent | undefined;
    try {
      const { threadId } = await carol.thread.create.mutate({ title: "failures" });
      const watcher = carol.openThreadQueue(threadId);
      await watcher.whenSynced();
      agent = runAgent({
        url: server.url,
        token: await server.token("agent", "retry", "runner"),
        autoReady: true,
        async onTurn(turn) {
          attempts.push(turn.dispatch.message.text);
          if (attempts.length === 1) throw new TurnStartError("model quota exhausted", { retryable: false });
          await turn.start();
          return { outcome: "completed" };
        },
      });
      await eventually(() => expect(watcher.state.session).toBe("ready"));
      const { queueItemId } = await watcher.add("needs two tries");
      await eventually(() =>
        expect(watcher.get(queueItemId)).toMatchObject({ status: "failed", failureReason: "model quota exhausted" }),
      );
      expect(watcher.state).toMatchObject({ paused: true, pauseReason: "failure" });

      await watcher.retry(queueItemId);
      await eventually(() => expect(watcher.entries).toEqual([]));
      expect(attempts).toEqual(["needs two tries", "needs two tries"]);
      expect(watcher.state.paused).toBe(false);
    } finally {
      await agent?.close();
      await carol.close();
    }
  });
});
