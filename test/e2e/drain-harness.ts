import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { runAgent, TurnStartError, type Agent, type Dispatch, type Turn, type TurnOutcome } from "../../client/agent.js";
import { createTransport, type Transport } from "../../client/transport.js";
import type { StoredEvent, ThreadState } from "../../src/domain/index.js";
import { startDrainReactor } from "../../src/reactors/drain.js";
import type { Config } from "../../src/config.js";
import { startTestServer, type TestServer } from "../support/server.js";

/**
 * A real server, a user client and a scripted agent runtime on the agent SDK. The test
 * decides what the agent does with each dispatch (start, fail, end the turn, accept or
 * reject a steer), so every drain policy is driven through the real protocol.
 */
export interface DrainHarness {
  server: TestServer;
  user: Transport;
  agent: ScriptedAgent;
  createThread(): Promise<string>;
  /** Queues a message; returns its queue item id. */
  add(threadId: string, text: string, options?: { delivery?: "queue" | "steer" | "interrupt" }): Promise<string>;
  state(threadId: string): Promise<ThreadState>;
  events(threadId: string): Promise<StoredEvent[]>;
  /**
   * A barrier for "nothing drains": a fresh drain reactor looks at every thread with work,
   * exactly as the running one does after each event, and claims whatever is eligible.
   */
  reactorLooked(): Promise<void>;
  close(): Promise<void>;
}

export const testDrainConfig: Partial<Config> = {
  drainPolicy: { maxQueueItems: 1000, maxAttempts: 3, retryBaseMs: 100, retryMaxMs: 400, dispatchTimeoutMs: 30_000 },
  sweepIntervalMs: 60_000,
};

export { databases } from "../support/database.js";

export async function startDrainHarness(config: Partial<Config> = {}, database: "pglite" | "postgres" = "pglite"): Promise<DrainHarness> {
  const server = await startTestServer({ database, config: { ...testDrainConfig, ...config } });
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const agent = new ScriptedAgent(server.url, await server.token("agent"));
  return {
    server,
    user,
    agent,
    async createThread() {
      const { threadId } = await user.thread.create.mutate({});
      return threadId;
    },
    async add(threadId, text, options = {}) {
      const { queueItemId } = await user.queue.add.mutate({
        threadId,
        message: { messageId: randomUUID(), text },
        delivery: options.delivery,
      });
      return queueItemId;
    },
    state: (threadId) => server.services.engine.load(threadId),
    events: (threadId) => server.services.store.readThread(threadId, 0),
    async reactorLooked() {
      const reactor = await startDrainReactor(server.services);
      await reactor.recovered;
      await reactor.close();
    },
    async close() {
      await agent.close();
      await user.close();
      await server.close();
    },
  };
}

/** One dispatched turn, held by the test until it says what the agent does. */
export interface HeldTurn {
  dispatch: Dispatch;
  /** Reports turnStarted; resolves with the turn id once the server acknowledged it. */
  start(): Promise<string>;
  /** Makes the start fail (before `start`); `retryAt`: a rate limit's reset. */
  fail(reason: string, retryable: boolean, retryAt?: string): void;
  /** Ends the turn (after `start`) with an outcome. */
  end(outcome?: TurnOutcome): void;
}

export interface HeldSteer {
  dispatch: Dispatch;
  accept(): void;
  reject(reason: string): void;
}

type Received = { kind: "turn"; turn: HeldTurn } | { kind: "steer"; steer: HeldSteer };

export class ScriptedAgent {
  readonly agent: Agent;
  /** Every dispatch whose handler ran, in arrival order. */
  readonly handled: Dispatch[] = [];
  private readonly inboxes = new Map<string, Received[]>();
  private waiting: (() => void)[] = [];

  constructor(url: string, token: string) {
    this.agent = runAgent({
      url,
      token,
      onTurn: (turn) => this.hold(turn),
      onSteer: (dispatch) =>
        new Promise<void>((resolve, reject) => {
          this.handled.push(dispatch);
          this.push({ kind: "steer", steer: { dispatch, accept: resolve, reject: (reason) => reject(new Error(reason)) } });
        }),
    });
  }

  private hold(turn: Turn): Promise<{ outcome: TurnOutcome }> {
    this.handled.push(turn.dispatch);
    return new Promise((resolve, reject) => {
      this.push({
        kind: "turn",
        turn: {
          dispatch: turn.dispatch,
          start: () => turn.start(),
          fail: (reason, retryable, retryAt) => reject(new TurnStartError(reason, { retryable, retryAt: retryAt === undefined ? undefined : new Date(retryAt) })),
          end: (outcome = "completed") => resolve({ outcome }),
        },
      });
      turn.signal.addEventListener("abort", () => resolve({ outcome: "interrupted" }), { once: true });
    });
  }

  private push(received: Received) {
    const threadId = received.kind === "turn" ? received.turn.dispatch.threadId : received.steer.dispatch.threadId;
    this.inboxOf(threadId).push(received);
    for (const wake of this.waiting.splice(0)) wake();
  }

  private inboxOf(threadId: string): Received[] {
    let inbox = this.inboxes.get(threadId);
    if (!inbox) this.inboxes.set(threadId, (inbox = []));
    return inbox;
  }

  private async next(threadId: string): Promise<Received> {
    const inbox = this.inboxOf(threadId);
    while (inbox.length === 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return inbox.shift()!;
  }

  /** The thread's next dispatched turn (fails the test if a steer comes instead). */
  async nextTurn(threadId: string): Promise<HeldTurn> {
    const received = await this.next(threadId);
    if (received.kind !== "turn") throw new Error(`expected a turn, got a steer of ${received.steer.dispatch.queueItemId}`);
    return received.turn;
  }

  async nextSteer(threadId: string): Promise<HeldSteer> {
    const received = await this.next(threadId);
    if (received.kind !== "steer") throw new Error(`expected a steer, got a turn of ${received.turn.dispatch.queueItemId}`);
    return received.steer;
  }

  /** Dispatches of a thread received but not yet taken by the test. */
  pending(threadId: string): number {
    return this.inboxOf(threadId).length;
  }

  session(threadId: string, status: "starting" | "ready" | "running" | "stopped" | "error") {
    return this.agent.session(threadId, status);
  }

  close() {
    return this.agent.close();
  }
}


/** The claims (`queue.item-send-started`) in a thread's log, in order. */
export const claimsIn = (events: StoredEvent[]) => events.filter((e) => e.type === "queue.item-send-started");

/**
 * The rule "one turn per item" (docs/design.md), read off the log: a claim happens only when no other item
 * is sending and (for a turn) no turn is active.
 */
export function expectOneTurnAtATime(events: StoredEvent[]) {
  let sending: string | null = null;
  let activeTurn: string | null = null;
  for (const e of events) {
    switch (e.type) {
      case "queue.item-send-started":
        expect(sending, `claim of ${e.payload.queueItemId} at v${e.version} while ${sending} is sending`).toBeNull();
        if (e.payload.kind === "turn") expect(activeTurn, `turn claim at v${e.version} during turn ${activeTurn}`).toBeNull();
        else expect(e.payload.expectedTurnId).toBe(activeTurn);
        sending = e.payload.queueItemId;
        break;
      case "queue.item-resolved":
      case "queue.item-send-failed":
        if (e.payload.queueItemId === sending) sending = null;
        break;
      case "queue.item-removed":
        expect(e.payload.queueItemId, "a sending item was removed").not.toBe(sending);
        break;
      case "turn.started":
        activeTurn = e.payload.turnId;
        break;
      case "turn.ended":
        activeTurn = null;
        break;
      case "session.changed":
        if (e.payload.status === "stopped" || e.payload.status === "error") activeTurn = null;
        break;
      case "thread.deleted":
        sending = null;
        break;
      default:
        break;
    }
  }
}
