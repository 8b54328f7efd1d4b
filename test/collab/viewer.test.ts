import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { TestServer } from "../support/server.js";
import { until } from "../support/poll.js";
import { connect, converged, createThread, exec, projection, startCollabServer, synced } from "./harness.js";

describe("a viewer's /yjs connection is read-only", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCollabServer();
  });
  afterAll(() => server?.close());

  it("its typing, moves, deletions and meta writes are undone on every replica, its own too; it keeps following the queue", async () => {
    const { threadId, ids } = await createThread(server, ["first", "second"]);
    const viewer = connect(server, threadId, await server.token("viewer", "local", "vera"));
    const user = connect(server, threadId, await server.token("user", "local", "ann"));
    await synced([viewer, user]);
    const before = (await projection(server, threadId)).meta.version;

    viewer.doc.transact(() => {
      viewer.text(ids[0]).insert(5, " and more");
      viewer.text(ids[1]).delete(0, 3);
      viewer.item(ids[1]).set("position", "a");
      viewer.doc.getMap("items").delete(ids[0]);
      viewer.doc.getMap("meta").set("paused", true);
    });
    const view = await converged(server, threadId, [viewer, user]);
    expect(view.items.map((i) => i.text)).toEqual(["first", "second"]);
    expect(view.meta.version).toBe(before);
    expect(viewer.closes).toEqual([]);

    // Still connected and following: a user's edit reaches it, and the viewer's presence reaches the user.
    user.text(ids[0]).insert(5, " thing");
    await until(async () => (await projection(server, threadId)).items[0]?.text === "first thing");
    await until(() => viewer.text(ids[0]).toString() === "first thing");
    viewer.provider.awareness.setLocalStateField("user", { name: "vera" });
    await until(() => (user.provider.awareness.getStates().get(viewer.doc.clientID) as { user?: { name: string } } | undefined)?.user?.name === "vera");

    await exec(server, threadId, { type: "queue.pause" });
    expect(viewer.view().meta.paused).toBe(false);
    await until(() => viewer.view().meta.paused === true);
    viewer.destroy();
    user.destroy();
  });

  it("another device never shows its writes, not even for a moment: they reach it merged with their undoing", async () => {
    const { threadId, ids } = await createThread(server, ["first"]);
    const viewer = connect(server, threadId, await server.token("viewer", "local", "vera"));
    const user = connect(server, threadId, await server.token("user", "local", "ann"));
    await synced([viewer, user]);
    const shown: string[] = [];
    user.doc.getMap("items").observeDeep(() => shown.push(user.text(ids[0]).toString()));

    for (const word of [" one", " two", " three"]) viewer.text(ids[0]).insert(viewer.text(ids[0]).length, word);
    await until(() => viewer.text(ids[0]).toString() === "first");
    // The user's own edit goes through after them: everything the server relayed before it has arrived.
    user.text(ids[0]).insert(5, "!");
    await converged(server, threadId, [viewer, user]);
    expect(shown.filter((text) => /one|two|three/.test(text))).toEqual([]);
    viewer.destroy();
    user.destroy();
  });

  it("what it wrote is not stored: a device joining later never sees it", async () => {
    const { threadId, ids } = await createThread(server, ["kept as is"]);
    const viewer = connect(server, threadId, await server.token("viewer", "local", "vera"));
    await synced([viewer]);
    viewer.text(ids[0]).insert(0, "NOT ");
    await converged(server, threadId, [viewer]);
    viewer.destroy();
    const late = connect(server, threadId, await server.token("user", "local", "ann"));
    await synced([late]);
    const view = await converged(server, threadId, [late]);
    expect(view.items.map((i) => i.text)).toEqual(["kept as is"]);
    expect(Y.encodeStateAsUpdate(late.doc).byteLength).toBeGreaterThan(0);
    late.destroy();
  });
});
