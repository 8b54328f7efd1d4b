import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { httpCall } from "../support/trpc-raw.js";
import { catalogue, routerPaths } from "./catalogue.js";
import { connect, uid, watchEvents, type Client } from "./harness.js";

describe("role viewer: reads every door, changes nothing", () => {
  let server: TestServer;
  let owner: Client;
  let viewer: Client;
  let viewerToken: string;
  let threadId: string;
  let queueItemId: string;

  beforeAll(async () => {
    server = await startTestServer();
    owner = connect(server, await server.token("user", "acme", "alice"));
    viewerToken = await server.token("viewer", "acme", "vera");
    viewer = connect(server, viewerToken);
    ({ threadId } = await owner.thread.create.mutate({ threadId: uid("watched"), title: "watched" }));
    ({ queueItemId } = await owner.queue.add.mutate({ threadId, message: { messageId: "m1", text: "write the tests" } }));
  });
  afterAll(async () => {
    owner?.close();
    viewer?.close();
    await server?.close();
  });

  it("reads the thread, the list and the live event stream (tRPC) and the REST GETs", async () => {
    expect((await viewer.thread.get.query({ threadId })).queue.items.map((i) => i.text)).toEqual(["write the tests"]);
    expect((await viewer.thread.list.query()).items.map((t) => t.threadId)).toContain(threadId);

    const events = watchEvents(viewer, { threadId });
    await events.started();
    await owner.queue.add.mutate({ threadId, message: { messageId: "m2", text: "then the docs" } });
    await events.count(3);
    expect(events.types()).toEqual(["thread.created", "queue.item-added", "queue.item-added"]);
    events.stop();

    const rest = await fetch(`${server.url}/api/v1/threads/${threadId}`, { headers: { authorization: `Bearer ${viewerToken}` } });
    expect(rest.status).toBe(200);
    expect(((await rest.json()) as { queue: { items: unknown[] } }).queue.items).toHaveLength(2);
  });

  it("every mutation, user side and agent side, is FORBIDDEN and the thread does not change", async () => {
    const before = await owner.thread.get.query({ threadId });
    const mutations = catalogue.filter((p) => p.kind === "mutation");
    // The catalogue names every procedure of the router: a new mutation is checked here without a list to keep.
    expect(catalogue.map((p) => p.path).sort()).toEqual(routerPaths());
    expect(mutations.length).toBeGreaterThan(10);
    for (const procedure of mutations) {
      const answer = await httpCall(server.url, viewerToken, "mutation", procedure.path, procedure.input({ threadId, queueItemId }));
      expect([procedure.path, answer.status, answer.error?.data?.code]).toEqual([procedure.path, 403, "FORBIDDEN"]);
    }
    // Nor may it take the agent's stream.
    const dispatches = catalogue.find((p) => p.path === "agent.dispatches")!;
    const stream = await httpCall(server.url, viewerToken, "subscription", dispatches.path, dispatches.input({ threadId, queueItemId }));
    expect(stream.status).not.toBe(200);

    const rest = await fetch(`${server.url}/api/v1/threads/${threadId}/queue/${queueItemId}`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${viewerToken}`, "content-type": "application/json" },
      body: JSON.stringify({ text: "a viewer's words" }),
    });
    expect(rest.status).toBe(403);
    expect(await owner.thread.get.query({ threadId })).toEqual(before);
  });
});
