import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { RedisBus } from "../../src/cluster/redis-bus.js";
import { adminConnection, killClientsNamed, redisAvailable, redisUrl, subscriberCount } from "./redis.js";
import { PrivateRedis } from "../support/private-redis.js";
import { until } from "../support/poll.js";

/** Messages received on one subscription, awaitable one by one. */
function mailbox() {
  const received: Buffer[] = [];
  const waiters: Array<() => void> = [];
  return {
    received,
    handler: (message: Uint8Array) => {
      received.push(Buffer.from(message));
      waiters.splice(0).forEach((wake) => wake());
    },
    async count(n: number) {
      while (received.length < n) await new Promise<void>((wake) => waiters.push(wake));
      return received.slice(0, n);
    },
  };
}

const hasRedis = await redisAvailable();

describe.runIf(hasRedis)("RedisBus (real Redis)", () => {
  let admin: Redis;
  const buses: RedisBus[] = [];
  // Two instances' worth of connections: each bus has its own publisher and subscriber.
  const open = async (name = `tq-test-${randomUUID()}`) => {
    const bus = await RedisBus.connect({ url: redisUrl, name });
    buses.push(bus);
    return bus;
  };
  const channel = () => `tq:test:${randomUUID()}`;

  beforeAll(() => {
    admin = adminConnection();
  });
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((bus) => bus.close()));
  });
  afterAll(async () => {
    await admin.quit();
  });

  it("delivers binary messages byte for byte, in publish order, from one instance to another", async () => {
    const [a, b] = [await open(), await open()];
    const topic = channel();
    const box = mailbox();
    await a.subscribe(topic, box.handler);

    // Not UTF-8 (lone continuation bytes, NUL, 0xff), empty, and a 1 MiB Yjs-sized update.
    const large = new Uint8Array(1 << 20).map((_, i) => (i * 31) & 0xff);
    const sent = [new Uint8Array([0x00, 0xff, 0x80, 0xc3, 0x28, 0x0a]), new Uint8Array(0), large, new Uint8Array([7])];
    // A view into a bigger buffer: only the viewed bytes may travel.
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    sent.push(backing.subarray(2, 5));
    for (const message of sent) await b.publish(topic, message);

    const got = await box.count(sent.length);
    expect(got.map((m) => m.length)).toEqual([6, 0, 1 << 20, 1, 3]);
    got.forEach((m, i) => expect(m.equals(sent[i]!), `message ${i}`).toBe(true));
    expect([...got[4]!]).toEqual([1, 2, 3]);
  });

  it("subscribe resolves only once Redis acknowledged it: a message published right after is delivered", async () => {
    const [a, b] = [await open(), await open()];
    for (let round = 0; round < 20; round++) {
      const topic = channel();
      const box = mailbox();
      await a.subscribe(topic, box.handler);
      await b.publish(topic, new Uint8Array([round]));
      expect([...(await box.count(1))[0]!]).toEqual([round]);
    }
  });

  it("fans a message out to every subscriber on every instance, including the publisher's own", async () => {
    const [a, b] = [await open(), await open()];
    const topic = channel();
    const [onA1, onA2, onB] = [mailbox(), mailbox(), mailbox()];
    await Promise.all([a.subscribe(topic, onA1.handler), a.subscribe(topic, onA2.handler), b.subscribe(topic, onB.handler)]);
    // One Redis subscription per instance, however many local handlers.
    expect(await subscriberCount(admin, topic)).toBe(2);
    await b.publish(topic, new TextEncoder().encode("hello"));
    for (const box of [onA1, onA2, onB]) expect((await box.count(1))[0]!.toString()).toBe("hello");
  });

  it("unsubscribe stops delivery to that handler only, and the last one leaves the Redis channel", async () => {
    const [a, b] = [await open(), await open()];
    const topic = channel();
    const marker = channel();
    const [stays, leaves, markers] = [mailbox(), mailbox(), mailbox()];
    await a.subscribe(topic, stays.handler);
    const unsubscribe = await a.subscribe(topic, leaves.handler);
    await a.subscribe(marker, markers.handler);

    await unsubscribe();
    await b.publish(topic, new Uint8Array([1]));
    // Redis delivers to one connection in publish order: once the marker is in, so is anything before it.
    await b.publish(marker, new Uint8Array([0]));
    await markers.count(1);
    await stays.count(1);
    expect(leaves.received).toEqual([]);
  });

  it("after the last unsubscribe nothing more arrives and Redis no longer routes the channel to this instance", async () => {
    const [a, b] = [await open(), await open()];
    const topic = channel();
    const marker = channel();
    const [gone, markers] = [mailbox(), mailbox()];
    const unsubscribe = await a.subscribe(topic, gone.handler);
    await a.subscribe(marker, markers.handler);
    expect(await subscriberCount(admin, topic)).toBe(1);

    await unsubscribe();
    expect(await subscriberCount(admin, topic)).toBe(0);
    await b.publish(topic, new Uint8Array([1]));
    await b.publish(marker, new Uint8Array([0]));
    await markers.count(1);
    expect(gone.received).toEqual([]);

    // Subscribing again to the same channel works (the UNSUBSCRIBE did not swallow it).
    const again = mailbox();
    await a.subscribe(topic, again.handler);
    await b.publish(topic, new Uint8Array([2]));
    expect([...(await again.count(1))[0]!]).toEqual([2]);
  });

  it("a throwing handler is reported and does not stop the others", async () => {
    const errors: string[] = [];
    const name = `tq-test-${randomUUID()}`;
    const a = await RedisBus.connect({ url: redisUrl, name, onError: (error, context) => errors.push(`${context.during}:${error.message}`) });
    buses.push(a);
    const b = await open();
    const topic = channel();
    const box = mailbox();
    await a.subscribe(topic, () => {
      throw new Error("boom");
    });
    await a.subscribe(topic, box.handler);
    await b.publish(topic, new Uint8Array([1]));
    await b.publish(topic, new Uint8Array([2]));
    expect((await box.count(2)).map((m) => m[0])).toEqual([1, 2]);
    expect(errors).toEqual(["handler:boom", "handler:boom"]);
  });

  it("survives its Redis connections being dropped (fault injected with CLIENT KILL): resubscribes and delivers again", async () => {
    const [nameA, nameB] = [`tq-test-a-${randomUUID()}`, `tq-test-b-${randomUUID()}`];
    const [a, b] = [await open(nameA), await open(nameB)];
    const topic = channel();
    const box = mailbox();
    await a.subscribe(topic, box.handler);
    await b.publish(topic, new Uint8Array([1]));
    await box.count(1);

    // Drop all four connections: A's listener and publisher, B's listener and publisher.
    expect(await killClientsNamed(admin, `${nameA}:sub`)).toBe(1);
    expect(await killClientsNamed(admin, `${nameA}:pub`)).toBe(1);
    expect(await killClientsNamed(admin, `${nameB}:pub`)).toBe(1);
    expect(await killClientsNamed(admin, `${nameB}:sub`)).toBe(1);

    // The listener comes back and re-SUBSCRIBEs by itself (messages in between may be lost: at-most-once).
    await until(async () => (await subscriberCount(admin, topic)) === 1);
    await b.publish(topic, new Uint8Array([2]));
    expect([...(await box.count(2))[1]!]).toEqual([2]);

    // And A, whose publisher was dropped too, publishes again; new subscriptions work.
    const late = mailbox();
    await b.subscribe(topic, late.handler);
    await a.publish(topic, new Uint8Array([3]));
    expect([...(await late.count(1))[0]!]).toEqual([3]);
    expect([...(await box.count(3))[2]!]).toEqual([3]);
  });

  it("close quits both connections and refuses further use", async () => {
    const name = `tq-test-${randomUUID()}`;
    const bus = await RedisBus.connect({ url: redisUrl, name });
    const topic = channel();
    await bus.subscribe(topic, () => {});
    await bus.close();
    const list = (await admin.client("LIST")) as string;
    expect(list).not.toContain(` name=${name}:`);
    expect(await subscriberCount(admin, topic)).toBe(0);
    await expect(bus.publish(topic, new Uint8Array([1]))).rejects.toThrow(/closed/);
    await expect(bus.subscribe(topic, () => {})).rejects.toThrow(/closed/);
  });

  it("refuses to start against an unreachable Redis with an error naming it", async () => {
    await expect(RedisBus.connect({ url: "redis://127.0.0.1:1" })).rejects.toThrow(/Redis at redis:\/\/127\.0\.0\.1:1.* is unreachable: .*ECONNREFUSED/);
  });
});

const hasRedisServer = spawnSync("redis-server", ["--version"]).status === 0;

describe.runIf(hasRedisServer)("RedisBus when Redis itself goes away (a private redis-server, stopped and started again)", () => {
  let redis: PrivateRedis;
  const buses: RedisBus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    await redis?.kill();
  });

  it("drops and reports what is published while Redis is down, then delivers again once it is back", async () => {
    redis = await PrivateRedis.start();
    const dropped: string[] = [];
    const a = await RedisBus.connect({ url: redis.url });
    const b = await RedisBus.connect({ url: redis.url, onError: (error, context) => dropped.push(`${context.during} on ${context.channel}`) });
    buses.push(a, b);
    const topic = "tq:test:restart";
    const box = mailbox();
    await a.subscribe(topic, box.handler);
    await b.publish(topic, new Uint8Array([1]));
    await box.count(1);

    await redis.kill();
    // At-most-once: the publisher is not failed for it (its command is already durable), the loss is reported.
    await expect(b.publish(topic, new Uint8Array([2]))).resolves.toBeUndefined();
    expect(dropped).toEqual([`publish on ${topic}`]);

    await redis.start();
    const admin = new Redis(redis.url);
    try {
      // Both buses reconnect by themselves and A's listener subscribes again.
      await until(async () => (await subscriberCount(admin, topic)) === 1);
    } finally {
      admin.disconnect();
    }
    await b.publish(topic, new Uint8Array([3]));
    expect((await box.count(2)).map((m) => m[0])).toEqual([1, 3]);
  });

  it("a restart of Redis is one outage: onReconnected tells its listeners once, when the subscriptions are live again", async () => {
    redis ??= await PrivateRedis.start();
    const bus = await RedisBus.connect({ url: redis.url, onError: () => {} });
    buses.push(bus);
    const topic = "tq:test:reconnected";
    const box = mailbox();
    await bus.subscribe(topic, box.handler);
    let told = 0;
    const delivered: Promise<unknown>[] = [];
    bus.onReconnected(() => {
      told++;
      // Told only once the subscription is live: what is published now arrives.
      delivered.push(bus.publish(topic, new Uint8Array([told])).then(() => box.count(told)));
    });

    await redis.kill();
    await redis.start();
    await until(() => told > 0);
    await Promise.all(delivered);
    // Both connections came back; the listeners hear of the outage once, not once per connection.
    await new Promise((r) => setTimeout(r, 500));
    expect(told).toBe(1);
    expect((await box.count(1)).map((m) => m[0])).toEqual([1]);
  });
});
