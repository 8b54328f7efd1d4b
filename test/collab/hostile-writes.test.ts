import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { TestServer } from "../support/server.js";
import { connect, converged, createThread, projection, rawConnect, startCollabServer, synced, until, yMessage } from "./harness.js";

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
