import pino from "pino";
import { InProcessBus, type Bus } from "../../src/cluster/bus.js";
import { Command, defaultDrainPolicy, type CommandInput } from "../../src/domain/index.js";
import { createEngine } from "../../src/engine/index.js";
import type { Engine } from "../../src/engine/types.js";
import type { EventStore } from "../../src/store/types.js";

/** A command as a client would send it, defaults filled in by the domain's own schema. */
export const cmd = (input: CommandInput): Command => Command.parse(input);

export const add = (i: string | number, text = `message ${i}`, extra: Partial<Extract<CommandInput, { type: "queue.add" }>> = {}) =>
  cmd({ type: "queue.add", queueItemId: `item-${i}`, message: { messageId: `msg-${i}`, text }, ...extra });

/** A clock tests move by hand (a fake clock: the only fake these tests use). */
export function manualClock(start = Date.parse("2026-01-01T00:00:00.000Z")) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => void (t += ms) };
}

export function testEngine(store: EventStore, options: { bus?: Bus; now?: () => Date } = {}): Engine {
  return createEngine({
    store,
    bus: options.bus ?? new InProcessBus(),
    now: options.now ?? (() => new Date()),
    policy: defaultDrainPolicy,
    logger: pino({ level: "silent" }),
  });
}

/** The test's principal issuing commands. */
export const user = { actor: "user:test" };
