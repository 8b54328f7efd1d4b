import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { runAgent, type Agent, type AgentAdapter } from "../../client/agent.js";
import { createTransport, type Transport } from "../../client/transport.js";
import type { StoredEvent } from "../../src/domain/index.js";
import { testDrainConfig } from "../e2e/drain-harness.js";
import { eventually } from "../support/poll.js";
import { startModelServer, type ModelServer } from "../support/model-server.js";
import { startTestServer, type TestServer } from "../support/server.js";

/**
 * A real Turnqueue server, the scripted model server, and (per test) a runtime driving a
 * real agent binary through an adapter. Only the language model is scripted.
 */
export interface AgentHarness {
  server: TestServer;
  model: ModelServer;
  user: Transport;
  agentToken: string;
  /** Starts a runtime in this process on `adapter`; closed with the harness. */
  runtime(adapter: AgentAdapter): Agent;
  thread(): Promise<string>;
  add(threadId: string, text: string, extra?: { options?: Record<string, string>; delivery?: "queue" | "steer" | "interrupt" }): Promise<string>;
  events(threadId: string): Promise<StoredEvent[]>;
  /** Waits for the thread's first event of `type` that `match` accepts. */
  waitForEvent(threadId: string, type: StoredEvent["type"], match?: (e: StoredEvent) => boolean): Promise<StoredEvent>;
  close(): Promise<void>;
}

/** Real agents take seconds per turn on a busy machine: these are limits against hangs only. */
export const AGENT_WAIT_MS = 100_000;

export async function startAgentHarness(): Promise<AgentHarness> {
  const model = await startModelServer();
  // Dispatch timeout well above an agent's start-up on a busy machine.
  const server = await startTestServer({ config: { ...testDrainConfig, drainPolicy: { ...testDrainConfig.drainPolicy!, dispatchTimeoutMs: 120_000 } } });
  const user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  const agentToken = await server.token("agent");
  const runtimes: Agent[] = [];
  const events = (threadId: string) => server.services.store.readThread(threadId, 0);
  return {
    server,
    model,
    user,
    agentToken,
    runtime(adapter) {
      const agent = runAgent({ url: server.url, token: agentToken, ...adapter });
      runtimes.push(agent);
      return agent;
    },
    async thread() {
      return (await user.thread.create.mutate({})).threadId;
    },
    async add(threadId, text, extra = {}) {
      const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text }, ...extra });
      return queueItemId;
    },
    events,
    waitForEvent(threadId, type, match = () => true) {
      return eventually(async () => {
        const found = (await events(threadId)).find((e) => e.type === type && match(e));
        expect(found, `a ${type} event`).toBeTruthy();
        return found!;
      }, AGENT_WAIT_MS);
    },
    async close() {
      for (const r of runtimes) await r.close();
      await user.close();
      await server.close();
      await model.close();
    },
  };
}

/** The turns of a thread's log: which item started which turn, and how it ended. */
export function turnsIn(events: StoredEvent[]) {
  const ended = new Map(events.flatMap((e) => (e.type === "turn.ended" ? [[e.payload.turnId, e.payload.outcome] as const] : [])));
  return events.flatMap((e) =>
    e.type === "message.sent" ? [{ text: e.payload.text, turnId: e.payload.turnId, outcome: ended.get(e.payload.turnId) ?? null }] : [],
  );
}
