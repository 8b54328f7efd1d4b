import pino from "pino";
import { describe, expect, it } from "vitest";
import { channels, InProcessBus } from "../../src/cluster/bus.js";
import type { StoredEvent } from "../../src/domain/index.js";
import { EventFeed, placeIn } from "../../src/engine/feed.js";

const event = (threadId: string, version: number): StoredEvent =>
  ({
    type: "queue.paused", payload: { reason: "user" }, seq: String(version), threadId, workspaceId: "w",
    version, commandId: `c${version}`, actor: "user:test", createdAt: new Date(0).toISOString(),
  }) as StoredEvent;

/** A pino logger writing into a list, to check what the feed skipped. */
const recorder = () => {
  const warnings: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });
  return { warnings, logger };
};

const next = () => new Promise((resolve) => setTimeout(resolve, 10));

describe("the feed of committed events", () => {
  it("skips and logs a message that is not a list of stored events; readers go on receiving", async () => {
    const bus = new InProcessBus();
    const { warnings, logger } = recorder();
    const feed = new EventFeed(bus, logger);
    const received: StoredEvent[][] = [];
    await feed.subscribe((events) => void received.push([...events]));
    for (const junk of ["not json", "{}", JSON.stringify([{ threadId: "t" }])]) {
      await bus.publish(channels.events, new TextEncoder().encode(junk));
    }
    feed.publish([event("t", 1)]);
    await next();
    expect(received).toEqual([[event("t", 1)]]);
    expect(warnings).toEqual(Array(3).fill("skipped an unreadable message on the events channel"));
    await feed.close();
  });

  it("one reader that throws does not keep a commit from the others", async () => {
    const bus = new InProcessBus();
    const feed = new EventFeed(bus, recorder().logger);
    const received: number[] = [];
    await feed.subscribe(() => {
      throw new Error("reader bug");
    });
    await feed.subscribe((events) => void received.push(events[0]!.version));
    feed.publish([event("t", 1)]);
    await next();
    expect(received).toEqual([1]);
    await feed.close();
  });

  it("a stream buffers what it keeps from the moment it is live, and ticks on the sweep", async () => {
    const bus = new InProcessBus();
    const feed = new EventFeed(bus, recorder().logger);
    const controller = new AbortController();
    const stream = await feed.stream({ keep: (events) => events.filter((e) => e.threadId === "mine"), sweepMs: 30, signal: controller.signal });
    // Published before anyone reads the stream: still delivered, in order; another thread's are not.
    feed.publish([event("other", 1)]);
    feed.publish([event("mine", 1)]);
    feed.publish([event("mine", 2)]);
    const seen: (number | "sweep")[] = [];
    for await (const events of stream) {
      if (events.length === 0) seen.push("sweep");
      for (const e of events) seen.push(e.version);
      if (seen.includes("sweep")) break;
    }
    expect(seen).toEqual([1, 2, "sweep"]);
    await stream.close();
    await feed.close();
  });

  it("tells a reader whether a live event was seen, comes next, or follows a gap", () => {
    expect(placeIn(3, { version: 2 })).toBe("seen");
    expect(placeIn(3, { version: 3 })).toBe("seen");
    expect(placeIn(3, { version: 4 })).toBe("next");
    expect(placeIn(3, { version: 6 })).toBe("gap");
  });
});
