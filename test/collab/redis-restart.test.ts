import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivateRedis } from "../support/private-redis.js";
import { until } from "../support/poll.js";
import { hasPostgres } from "../support/postgres.js";
import type { TestServer } from "../support/server.js";
import { connect, converged, createThread, exec, startInstancePair, synced, type Device } from "./harness.js";

/**
 * Redis killed and started again under two instances holding one thread's document, with
 * typing and an API edit during the outage and typing right after it (the fault is real:
 * a private redis-server killed and started; nothing is scripted).
 */
describe.runIf(hasPostgres)("a Redis restart under two instances holding one document (private Redis)", () => {
  let redis: PrivateRedis;
  let pair: Awaited<ReturnType<typeof startInstancePair>>;
  let a: TestServer;
  let b: TestServer;
  const devices: Device[] = [];

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    pair = await startInstancePair(redis.url);
    ({ a, b } = pair);
  });
  afterAll(async () => {
    for (const d of devices) d.destroy();
    await pair?.close();
    await redis?.kill();
  });

  it("nothing typed or edited during or after the outage is lost or doubled, and every replica ends equal to the log", async () => {
    const { threadId, ids } = await createThread(a, ["one", "two"]);
    const [onA, onB] = [connect(a, threadId, await a.token()), connect(b, threadId, await b.token())];
    devices.push(onA, onB);
    await synced([onA, onB]);

    await redis.kill();
    // During the outage: typing on B, an API edit committed on A.
    onB.text(ids[1]).insert(onB.text(ids[1]).length, " typedOnB-during");
    await exec(a, threadId, { type: "queue.edit", queueItemId: ids[0], text: "one edited-during" });
    await until(async () => (await b.services.engine.load(threadId)).items.get(ids[1]!)!.text === "two typedOnB-during");
    await new Promise((r) => setTimeout(r, 1_000));

    await redis.start();
    // Typing right after Redis is back, before the instances have caught up.
    onA.text(ids[1]).insert(0, "typedOnA-after ");

    const view = await converged(a, threadId, [onA, onB]);
    expect(await converged(b, threadId, [onA, onB])).toEqual(view);
    const texts = Object.fromEntries(view.items.map((i) => [i.id, i.text]));
    // Each word once: nothing doubled by two replicas writing the same text, nothing lost.
    expect(texts[ids[1]]).toBe("typedOnA-after two typedOnB-during");
    expect(texts[ids[0]]).toBe("one edited-during");
  });
});
