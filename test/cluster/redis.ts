import { Redis } from "ioredis";

/**
 * The Redis the cluster suites run against: TEST_REDIS_URL, else the machine's default.
 * Set explicitly (CI), an unreachable Redis fails the suite loudly; left at the default,
 * a machine without Redis skips the Redis suites.
 */
export const redisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

export async function redisAvailable(): Promise<boolean> {
  const probe = new Redis(redisUrl, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
  probe.on("error", () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch (error) {
    if (process.env.TEST_REDIS_URL) {
      throw new Error(`TEST_REDIS_URL is set (${redisUrl}) but Redis is unreachable: ${(error as Error).message}`);
    }
    console.warn(`Redis at ${redisUrl} is unreachable: Redis suites are skipped (CI sets TEST_REDIS_URL).`);
    return false;
  } finally {
    probe.disconnect();
  }
}

/** An ordinary connection for the test itself: fault injection and PUBSUB introspection. */
export function adminConnection(): Redis {
  return new Redis(redisUrl);
}

/** Fault injection: drops every connection whose CLIENT SETNAME is `name`; returns how many. */
export async function killClientsNamed(admin: Redis, name: string): Promise<number> {
  const list = (await admin.client("LIST")) as string;
  const ids = list
    .split("\n")
    .filter((line) => line.includes(` name=${name} `))
    .map((line) => /\bid=(\d+)/.exec(line)![1]!);
  for (const id of ids) await admin.client("KILL", "ID", id);
  return ids.length;
}

/** Subscribers Redis counts on a channel (0 once every instance unsubscribed). */
export async function subscriberCount(admin: Redis, channel: string): Promise<number> {
  const [, count] = (await admin.pubsub("NUMSUB", channel)) as [string, number];
  return Number(count);
}
