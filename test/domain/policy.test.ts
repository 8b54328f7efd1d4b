import { describe, expect, it } from "vitest";
import { backoffMs, defaultDrainPolicy, nextWakeAt } from "../../src/domain/index.js";
import { Thread } from "./harness.js";

const policy = { maxAttempts: 5, retryBaseMs: 500, retryMaxMs: 4_000 };

describe("retry backoff", () => {
  it("doubles from the base delay after each attempt", () => {
    expect([1, 2, 3, 4].map((a) => backoffMs(a, policy))).toEqual([500, 1_000, 2_000, 4_000]);
  });

  it("never exceeds the maximum delay", () => {
    expect(backoffMs(10, policy)).toBe(4_000);
    expect(backoffMs(1_000, policy)).toBe(4_000);
  });

  it("the default policy allows a few attempts within seconds", () => {
    expect(defaultDrainPolicy.maxAttempts).toBeGreaterThan(1);
    expect(backoffMs(1, defaultDrainPolicy)).toBeLessThanOrEqual(defaultDrainPolicy.retryMaxMs);
  });
});

describe("next wake-up", () => {
  function backingOff(): Thread {
    const t = Thread.ready(policy);
    t.add("a");
    t.claim();
    t.startFailed("a", true);
    return t;
  }

  it("is the head's retry time when only the backoff blocks the thread", () => {
    const t = backingOff();
    expect(nextWakeAt(t.state, t.now)?.toISOString()).toBe("2026-01-01T00:00:00.500Z");
  });

  it("is null once the retry time has passed (the thread is eligible now)", () => {
    const t = backingOff();
    t.advance(500);
    expect(nextWakeAt(t.state, t.now)).toBeNull();
  });

  it("is null when something else blocks the thread at that time (paused)", () => {
    const t = backingOff();
    t.ok({ type: "queue.pause" });
    expect(nextWakeAt(t.state, t.now)).toBeNull();
  });

  it("is null when no item waits for a retry", () => {
    const t = Thread.ready(policy);
    t.ok({ type: "queue.pause" });
    t.add("a");
    expect(nextWakeAt(t.state, t.now)).toBeNull();
  });
});
