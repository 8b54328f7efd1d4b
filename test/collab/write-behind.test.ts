import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { WriteBehind } from "../../src/collab/write-behind.js";
import { createDocStore, type DocStore } from "../../src/store/doc-store.js";
import { until } from "../support/poll.js";
import type { TestServer } from "../support/server.js";
import { createThread, startCollabServer } from "./harness.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** An update that inserts `text` at the end of the document's text "t". */
function typing(doc: Y.Doc, text: string): Uint8Array {
  const before = Y.encodeStateVector(doc);
  doc.getText("t").insert(doc.getText("t").length, text);
  return Y.encodeStateAsUpdate(doc, before);
}

async function storedText(docStore: DocStore, threadId: string): Promise<{ text: string; tail: number }> {
  const { update, tail } = await docStore.load(threadId);
  const doc = new Y.Doc();
  if (update) Y.applyUpdate(doc, update);
  return { text: doc.getText("t").toString(), tail };
}

describe("a lone instance gathers document updates before storing them (real PGlite)", () => {
  let server: TestServer;
  let docStore: DocStore;
  beforeAll(async () => {
    server = await startCollabServer();
    docStore = createDocStore(server.services.db.sql);
  });
  afterAll(() => server?.close());

  it("a write someone waits for (what a commit of typed text and an unload do) is stored at once, however long updates would gather", async () => {
    const { threadId } = await createThread(server);
    const writer = new WriteBehind(docStore, server.services.logger, 60_000);
    writer.push(threadId, typing(new Y.Doc(), "acknowledged"));
    const outcome = await Promise.race([writer.flushed().then(() => "stored"), sleep(10_000).then(() => "still gathering")]);
    expect(outcome).toBe("stored");
    expect((await storedText(docStore, threadId)).text).toBe("acknowledged");
  });

  it("updates nobody waits for are stored once the gathering ends, in one write", async () => {
    const { threadId } = await createThread(server);
    const writer = new WriteBehind(docStore, server.services.logger, 2_000);
    const before = await storedText(docStore, threadId);
    const doc = new Y.Doc();
    for (const key of ["a", "b", "c"]) {
      writer.push(threadId, typing(doc, key));
      await sleep(20);
    }
    await until(async () => (await storedText(docStore, threadId)).text === "abc", () => "the typing was never stored", 10_000);
    expect((await storedText(docStore, threadId)).tail).toBe(before.tail + 1);
  });
});
