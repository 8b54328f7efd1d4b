import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { channels } from "../../src/cluster/bus.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, failure, uid, watchEvents } from "../support/clients.js";
import { databases } from "../support/database.js";

/** Fault injection: the next `count` committed-event messages vanish on the bus, as Redis pub/sub may lose them. */
function dropEventMessages(server: TestServer) {
  const bus = server.services.bus;
  const publish = bus.publish.bind(bus);
  let dropping = 0;
  bus.publish = async (channel, message) => {
    if (channel === channels.events && dropping > 0) {
      dropping--;
      return;
    }
    return publish(channel, message);
  };
  return (count: number) => {
    dropping = count;
  };
}

describe.each(databases)("thread.events when the bus loses messages (%s)", (database) => {
  let quiet: TestServer;
  let sweeping: TestServer;

  beforeAll(async () => {
    // No sweep within the test's life: only gap detection can recover a lost message.
    quiet = await startTestServer({ database, config: { sweepIntervalMs: 3_600_000 } });
    sweeping = await startTestServer({ database, config: { sweepIntervalMs: 100 } });
  });
  afterAll(async () => {
    await quiet?.close();
    await sweeping?.close();
  });

  it("fills the gap a lost message left as soon as the next event arrives (fault injected: one publish dropped)", async () => {
    const drop = dropEventMessages(quiet);
    const user = connect(quiet, await quiet.token("user"));
    const threadId = (await user.thread.create.mutate({})).threadId;
    const events = watchEvents(user, { threadId });
    try {
      await events.count(1);
      drop(1);
      await user.queue.add.mutate({ threadId, message: { messageId: "lost", text: "lost on the bus" } });
      await user.queue.add.mutate({ threadId, message: { messageId: "next", text: "delivered" } });
      await events.count(3);
      expect(events.received.map((r) => r.event.version)).toEqual([1, 2, 3]);
      expect(events.received.map((r) => r.event.payload)).toMatchObject([{}, { text: "lost on the bus" }, { text: "delivered" }]);
    } finally {
      events.stop();
      user.close();
    }
  });

  it("delivers a lost last event at the next sweep (fault injected: one publish dropped)", async () => {
    const drop = dropEventMessages(sweeping);
    const user = connect(sweeping, await sweeping.token("user"));
    const threadId = (await user.thread.create.mutate({})).threadId;
    const events = watchEvents(user, { threadId });
    try {
      await events.count(1);
      drop(1);
      await user.queue.pause.mutate({ threadId });
      await events.count(2);
      expect(events.types()).toEqual(["thread.created", "queue.paused"]);
    } finally {
      events.stop();
      user.close();
    }
  });

  // Last: it takes the database away from the server.
  it("with the database gone, queries and mutations answer SERVICE_UNAVAILABLE (fault injected: database closed under the server)", async () => {
    const user = connect(quiet, await quiet.token("user"));
    try {
      const threadId = (await user.thread.create.mutate({})).threadId;
      await quiet.services.db.close();
      for (const call of [
        () => user.thread.get.query({ threadId }),
        () => user.thread.list.query(),
        () => user.queue.add.mutate({ threadId, message: { messageId: "m", text: "x" } }),
        () => user.thread.create.mutate({}),
      ]) {
        expect((await failure(call())).data?.code).toBe("SERVICE_UNAVAILABLE");
      }
    } finally {
      user.close();
    }
  });
});
