import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ThreadDoc } from "../../src/collab/thread-doc.js";
import { WriteBehind } from "../../src/collab/write-behind.js";
import { readDoc } from "../../src/collab/index.js";
import { createDocStore } from "../../src/store/doc-store.js";
import type { EventStore } from "../../src/store/types.js";
import { until } from "../support/poll.js";
import type { TestServer } from "../support/server.js";
import { createThread, exec, projection, startCollabServer } from "./harness.js";

/**
 * A replica that missed events reads them from the log and catches up. Whatever commits
 * while it does must still reach its document: either in what it read, or on the feed after.
 */
describe("a replica catching up with missed events", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCollabServer();
  });
  afterAll(() => server?.close());

  it("an API edit committed right after it read the missed events still reaches its document (injected fault: the edit commits between that read and the rest of the catch-up)", async () => {
    const { services } = server;
    const { threadId, ids } = await createThread(server, ["draft"]);
    const store = services.store;
    let interleave: (() => Promise<void>) | null = null;
    const events: Pick<EventStore, "readThread"> = {
      async readThread(id, afterVersion) {
        const read = await store.readThread(id, afterVersion);
        const fault = interleave;
        interleave = null;
        await fault?.();
        return read;
      },
    };
    const docStore = createDocStore(services.db.sql);
    const writer = new WriteBehind(docStore, services.logger);
    const replica = await ThreadDoc.load(threadId, {
      engine: services.engine,
      events,
      bus: services.bus,
      lease: services.lease,
      docStore,
      writer,
      logger: services.logger,
      editCoalesceMs: 20,
      editLockMs: 3_000,
      maxAwarenessBytes: 8_192,
      instanceId: randomUUID(),
      onGone: () => {},
    });
    const unsubscribe = await services.engine.feed.subscribe((committed) => {
      const own = committed.filter((e) => e.threadId === threadId);
      if (own.length > 0) void replica.applyEvents(own).catch(() => {});
    });
    try {
      interleave = async () => void (await exec(server, threadId, { type: "queue.edit", queueItemId: ids[0], text: "final" }));
      await replica.resync("missed");
      expect((await projection(server, threadId)).items[0]?.text).toBe("final");
      await until(() => readDoc(replica.doc).items[0]?.text === "final", () => readDoc(replica.doc).items, 10_000);
    } finally {
      await unsubscribe();
      await replica.close();
    }
  });
});
