import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { encodeAwarenessUpdate, MAX_AWARENESS_IDS_PER_CONNECTION } from "../../src/collab/protocol.js";
import type { TestServer } from "../support/server.js";
import { connect, converged, type Device, createThread, projection, rawConnect, startCollabServer, synced, yMessage } from "./harness.js";
import { until } from "../support/poll.js";

/**
 * Writes no y-websocket client makes but any connection can send: real y-protocols
 * messages over a real socket, against a real server, with real clients watching.
 */

const updateMessage = (update: Uint8Array) =>
  yMessage(
    (e) => encoding.writeVarUint(e, 0),
    (e) => syncProtocol.writeUpdate(e, update),
  );

let server: TestServer;
beforeAll(async () => {
  server = await startCollabServer();
});
afterAll(() => server?.close());

/** A connection of user `sub` that has received the server's first message. */
async function attacker(threadId: string, sub = "mallory") {
  const raw = rawConnect(server, threadId, await server.token("user", "local", sub));
  expect(await raw.outcome).toEqual({ opened: true });
  await until(() => raw.messages.length > 0);
  return raw;
}

describe("updates whose dependencies the server lacks", () => {
  /** A replica's two successive updates: the second builds on the first. */
  function twoSteps(first: (doc: Y.Doc) => void, second: (doc: Y.Doc) => void): Uint8Array {
    const doc = new Y.Doc();
    first(doc);
    const before = Y.encodeStateVector(doc);
    second(doc);
    return Y.encodeStateAsUpdate(doc, before);
  }

  it.each([
    [
      "structs after a clock the server never got (0.9 MB of them)",
      twoSteps(
        (d) => d.getMap("items").set("first", "a"),
        (d) => d.getMap("items").set("second", "x".repeat(900_000)),
      ),
    ],
    [
      "a deletion of content the server never got",
      twoSteps(
        (d) => d.getMap("items").set("doomed", "v"),
        (d) => d.getMap("items").delete("doomed"),
      ),
    ],
  ])("%s: refused with a clear reason, kept nowhere, never sent to a joiner", async (_name, update) => {
    const { threadId, ids } = await createThread(server, ["keep me"]);
    const before = await projection(server, threadId);
    const raw = await attacker(threadId);
    raw.ws.send(updateMessage(update));
    const closed = await raw.closed;
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/depends on content the server does not have/);

    const joiner = connect(server, threadId, await server.token("user", "local", "joiner"));
    await synced([joiner]);
    expect(joiner.doc.store.pendingStructs).toBeNull();
    expect(joiner.doc.store.pendingDs).toBeNull();
    expect(Y.encodeStateAsUpdate(joiner.doc).byteLength).toBeLessThan(10_000);
    expect(await projection(server, threadId)).toEqual(before);
    // The document still works for everyone else.
    joiner.text(ids[0]).insert(0, "still ");
    await until(async () => (await projection(server, threadId)).items[0]?.text === "still keep me");
    await converged(server, threadId, [joiner]);
    joiner.destroy();
  });
});

describe("awareness: a client writes only its own presence, bounded", () => {
  const awarenessMessage = (entries: { clientId: number; clock: number; state: unknown }[]) =>
    yMessage(
      (e) => encoding.writeVarUint(e, 1),
      (e) => encoding.writeVarUint8Array(e, encodeAwarenessUpdate(entries.map((x) => ({ ...x, state: JSON.stringify(x.state) })))),
    );
  const nameOf = (device: Device, clientId: number) => (device.provider.awareness.getStates().get(clientId) as { name?: string } | undefined)?.name;

  it("a forged entry for another client's id never reaches a third client", async () => {
    const { threadId } = await createThread(server, []);
    const alice = connect(server, threadId, await server.token("user", "local", "alice"));
    const charlie = connect(server, threadId, await server.token("user", "local", "charlie"));
    alice.provider.awareness.setLocalState({ name: "alice" });
    await synced([alice, charlie]);
    await until(() => nameOf(charlie, alice.doc.clientID) === "alice");

    const mallory = await attacker(threadId);
    mallory.ws.send(
      awarenessMessage([
        { clientId: alice.doc.clientID, clock: 1_000, state: { name: "mallory pretending" } },
        { clientId: 424_242, clock: 1, state: { name: "mallory" } },
      ]),
    );
    // Her own entry arrives: the forged one, in the same message, was dropped.
    await until(() => nameOf(charlie, 424_242) === "mallory");
    expect(nameOf(charlie, alice.doc.clientID)).toBe("alice");
    expect(nameOf(alice, alice.doc.clientID)).toBe("alice");
    // A removal of alice's entry is no more hers to send.
    mallory.ws.send(awarenessMessage([{ clientId: alice.doc.clientID, clock: 2_000, state: null }, { clientId: 424_242, clock: 2, state: { name: "mallory again" } }]));
    await until(() => nameOf(charlie, 424_242) === "mallory again");
    expect(nameOf(charlie, alice.doc.clientID)).toBe("alice");
    mallory.ws.close();
    alice.destroy();
    charlie.destroy();
  });

  it("a 0.9 MB presence closes its connection with a clear reason and reaches no one", async () => {
    const { threadId } = await createThread(server, []);
    const alice = connect(server, threadId, await server.token("user", "local", "alice"));
    const charlie = connect(server, threadId, await server.token("user", "local", "charlie"));
    await synced([alice, charlie]);

    const mallory = await attacker(threadId);
    mallory.ws.send(awarenessMessage([{ clientId: 515_151, clock: 1, state: { name: "x".repeat(900_000) } }]));
    const closed = await mallory.closed;
    expect(closed.code).toBe(4413);
    expect(closed.reason).toMatch(/awareness state of \d+ bytes exceeds the 16384-byte limit/);
    // Alice's change, sent after the refusal, arrives; the oversized one never did.
    alice.provider.awareness.setLocalState({ name: "alice" });
    await until(() => nameOf(charlie, alice.doc.clientID) === "alice");
    expect(charlie.provider.awareness.getStates().has(515_151)).toBe(false);
    alice.destroy();
    charlie.destroy();
  });

  it("a connection introduces a bounded number of presences", async () => {
    const { threadId } = await createThread(server, []);
    const charlie = connect(server, threadId, await server.token("user", "local", "charlie"));
    await synced([charlie]);
    const mallory = await attacker(threadId);
    const ids = Array.from({ length: 50 }, (_, i) => 700_000 + i);
    mallory.ws.send(awarenessMessage(ids.map((clientId) => ({ clientId, clock: 1, state: { name: `fake ${clientId}` } }))));
    await until(() => ids.some((id) => charlie.provider.awareness.getStates().has(id)));
    // One more message after the flood: once it is in, the flood was handled too.
    mallory.ws.send(awarenessMessage([{ clientId: ids[0], clock: 2, state: { name: "last" } }]));
    await until(() => nameOf(charlie, ids[0]) === "last");
    expect(ids.filter((id) => charlie.provider.awareness.getStates().has(id)).length).toBe(MAX_AWARENESS_IDS_PER_CONNECTION);
    mallory.ws.close();
    charlie.destroy();
  });
});

describe("an item's text holds plain characters only", () => {
  it("a formatted range (100 KB attribute), formatted typing and a 200 KB embed are undone; the typed characters stay", async () => {
    const { threadId, ids } = await createThread(server, ["keep me"]);
    const [id] = ids;
    const mallory = connect(server, threadId, await server.token("user", "local", "mallory"));
    const charlie = connect(server, threadId, await server.token("user", "local", "charlie"));
    await synced([mallory, charlie]);

    mallory.text(id).format(0, 4, { bold: "b".repeat(100_000) });
    mallory.text(id).insertEmbed(2, { image: "i".repeat(200_000) });
    mallory.text(id).insert(0, "hi ", { italic: true });

    const plain = (device: Device) => JSON.stringify(device.text(id).toDelta()) === JSON.stringify([{ insert: "hi keep me" }]);
    await until(() => plain(mallory) && plain(charlie), () => [mallory.text(id).toDelta(), charlie.text(id).toDelta()]);
    await until(async () => (await projection(server, threadId)).items[0]?.text === "hi keep me");
    await converged(server, threadId, [mallory, charlie]);

    // A device joining later gets the plain text, without the refused bytes.
    const joiner = connect(server, threadId, await server.token("user", "local", "joiner"));
    await synced([joiner]);
    expect(joiner.text(id).toDelta()).toEqual([{ insert: "hi keep me" }]);
    expect(Y.encodeStateAsUpdate(joiner.doc).byteLength).toBeLessThan(20_000);
    expect(mallory.closes).toEqual([]);
    for (const d of [mallory, charlie, joiner]) d.destroy();
  });
});
