import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import type { OutboxEntry } from "../../client/outbox.js";
import { eventually } from "../support/poll.js";
import { startTestServer, type TestServer } from "../support/server.js";

describe("the live queue's outbox: add() while disconnected (real server, memory outbox in Node)", { timeout: 120_000 }, () => {
  let server: TestServer;
  let client: TurnqueueClient;

  beforeAll(async () => {
    server = await startTestServer();
    client = createTurnqueueClient({ url: server.url, token: await server.token("user", "acme", "alice") });
  });
  afterAll(async () => {
    await client?.close();
    await server?.close();
  });

  const serverTexts = async (threadId: string) => (await client.thread.get.query({ threadId })).queue.items.map((i) => i.text);

  it("keeps the adds in order with their message ids and sends each once on reconnect; add() resolves then", async () => {
    const { threadId } = await client.thread.create.mutate({ title: "outbox" });
    const queue = client.openThreadQueue(threadId);
    await queue.whenSynced();
    queue.disconnect();
    await eventually(() => expect(queue.status).toBe("disconnected"));

    const first = queue.add("first", { messageId: "m-first" });
    const second = queue.add("second", { messageId: "m-second" });
    await eventually(() => expect(queue.outbox.map((e) => [e.messageId, e.text])).toEqual([["m-first", "first"], ["m-second", "second"]]));
    expect(await serverTexts(threadId)).toEqual([]);

    queue.connect();
    const [one, two] = await Promise.all([first, second]);
    expect([one.status, two.status]).toEqual(["pending", "pending"]);
    expect(queue.outbox).toEqual([]);
    expect(await serverTexts(threadId)).toEqual(["first", "second"]);
    await eventually(() => expect(queue.entries.map((e) => e.messageId)).toEqual(["m-first", "m-second"]));
    queue.close();
  });

  it("a message the server refuses for good (the thread was archived meanwhile) is dropped and said so, never silently", async () => {
    const { threadId } = await client.thread.create.mutate({ title: "archived while offline" });
    const queue = client.openThreadQueue(threadId);
    await queue.whenSynced();
    queue.disconnect();
    const refused: OutboxEntry[] = [];
    queue.on("refused", (entry) => refused.push(entry));
    const added = queue.add("too late", { messageId: "m-late" });
    await client.thread.archive.mutate({ threadId });
    queue.connect();
    await expect(added).rejects.toMatchObject({ data: { code: "CONFLICT", reason: "THREAD_ARCHIVED" } });
    expect(refused.map((e) => e.messageId)).toEqual(["m-late"]);
    expect(queue.outbox).toEqual([]);
    queue.close();
  });
});
