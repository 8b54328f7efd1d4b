import {
  Command, DomainError, decide, defaultDrainPolicy, evolve, initialState,
  type CommandInput, type DomainEvent, type DrainPolicy, type ThreadState, type VersionedEvent,
} from "../../src/domain/index.js";

/**
 * One thread driven the way the engine drives it: parse the command (defaults applied),
 * decide, then evolve each event with the next version. The clock is a fake one the test
 * moves by hand, which is the only way to make backoff deadlines deterministic.
 */
export class Thread {
  state: ThreadState;
  readonly log: VersionedEvent[] = [];
  now: Date;

  constructor(
    readonly threadId = "t1",
    readonly policy: DrainPolicy = defaultDrainPolicy,
    now = new Date("2026-01-01T00:00:00.000Z"),
  ) {
    this.state = initialState(threadId);
    this.now = now;
  }

  /** Runs a command; returns its events, or the refusal (which must change nothing). */
  run(input: CommandInput): DomainEvent[] | DomainError {
    const before = this.state;
    const decision = decide(this.state, Command.parse(input), { now: this.now, policy: this.policy });
    if (decision instanceof DomainError) {
      if (this.state !== before) throw new Error("a refusal changed the state");
      return decision;
    }
    for (const event of decision) this.apply(event);
    return decision;
  }

  /** Runs a command that must be accepted. */
  ok(input: CommandInput): DomainEvent[] {
    const result = this.run(input);
    if (result instanceof DomainError) throw new Error(`${input.type} refused: ${result.reason} ${result.message}`);
    return result;
  }

  /** Runs a command that must be refused; returns the reason code. */
  refused(input: CommandInput): string {
    const result = this.run(input);
    if (!(result instanceof DomainError)) throw new Error(`${input.type} was accepted: ${JSON.stringify(result)}`);
    return result.reason;
  }

  apply(event: DomainEvent): void {
    const stamped: VersionedEvent = { ...event, version: this.state.version + 1, createdAt: this.now.toISOString() };
    this.log.push(stamped);
    this.state = evolve(this.state, stamped);
  }

  advance(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  item(id: string) {
    return this.state.items.get(id)!;
  }

  /** Queue item ids in queue order. */
  order(): string[] {
    return [...this.state.items.values()]
      .sort((a, b) => (a.position < b.position ? -1 : a.position > b.position ? 1 : a.queueItemId < b.queueItemId ? -1 : 1))
      .map((i) => i.queueItemId);
  }

  // Shorthands for the commands most tests need.
  create(workspaceId = "w1") {
    return this.ok({ type: "thread.create", workspaceId, title: "a thread" });
  }
  add(id: string, text = `text of ${id}`, extra: Partial<Extract<CommandInput, { type: "queue.add" }>> = {}) {
    return this.run({ type: "queue.add", queueItemId: id, message: { messageId: `m-${id}`, text }, author: AUTHOR, ...extra });
  }
  ready() {
    return this.ok({ type: "agent.session", status: "ready" });
  }
  claim() {
    return this.ok({ type: "drain.claim" });
  }
  started(queueItemId: string, turnId: string) {
    return this.ok({ type: "agent.turnStarted", queueItemId, turnId });
  }
  ended(turnId: string, outcome: "completed" | "interrupted" | "failed" = "completed") {
    return this.ok({ type: "agent.turnEnded", turnId, outcome });
  }
  startFailed(queueItemId: string, retryable: boolean, reason = "agent said no") {
    return this.ok({ type: "agent.turnStartFailed", queueItemId, reason, retryable });
  }

  /**
   * A ready thread holding `ids` in order, nothing claimed yet: added under a pause (an add on
   * an idle ready thread claims in the same decision), then resumed (a resume leaves the claim
   * to the drain).
   */
  static holding(policy: DrainPolicy | undefined, ...ids: string[]): Thread {
    const t = Thread.ready(policy);
    t.ok({ type: "queue.pause" });
    for (const id of ids) t.add(id);
    t.ok({ type: "queue.resume" });
    return t;
  }

  /** A created thread with a ready session: the usual starting point. */
  static ready(policy?: DrainPolicy): Thread {
    const t = new Thread("t1", policy);
    t.create();
    t.ready();
    return t;
  }
}

/** Who queues in these tests, as a procedure fills it in from the caller's token. */
export const AUTHOR = { sub: "user-1" };

export const types = (events: DomainEvent[] | DomainError): string[] => {
  if (events instanceof DomainError) throw new Error(`refused: ${events.reason}`);
  return events.map((e) => e.type);
};

export function claimOf(events: DomainEvent[]) {
  const claim = events.find((e) => e.type === "queue.item-send-started");
  if (!claim || claim.type !== "queue.item-send-started") throw new Error("no claim among the events");
  return claim.payload;
}
