import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAgent, type Agent, type Dispatch } from "../../client/agent.js";
import { startEchoAgent } from "../../client/echo-agent.js";
import { createTransport, type Transport } from "../../client/transport.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { testDrainConfig } from "./drain-harness.js";
import { eventually } from "../support/poll.js";

describe("a running turn: the user stops it through the agent runtime, or its runtime dies", () => {
  let server: TestServer;
  let user: Transport;
  beforeAll(async () => {
    server = await startTestServer({ config: testDrainConfig });
    user = createTransport({ url: server.url, token: await server.token("user"), calls: "socket" });
  });
  afterAll(async () => {
    await user?.close();
    await server?.close();
  });

  const queue = (threadId: string, text: string, delivery?: "steer") =>
    user.queue.add.mutate({ threadId, message: { messageId: randomUUID(), text }, delivery });

  it("the echo agent's turn ends interrupted, the queue pauses and the next item waits", async () => {
    const agent: Agent = startEchoAgent({ url: server.url, token: await server.token("agent"), delayMs: 600_000, echo: () => {} });
    try {
      const { threadId } = await user.thread.create.mutate({});
      await queue(threadId, "a long task");
      const { queueItemId: next } = await queue(threadId, "after it");
      const turnId = await eventually(async () => {
        const { session } = await user.thread.get.query({ threadId });
        expect(session.activeTurnId).toBeTruthy();
        return session.activeTurnId!;
      }, 60_000);

      await user.thread.interrupt.mutate({ threadId });

      await eventually(async () => {
        const snapshot = await user.thread.get.query({ threadId });
        expect(snapshot.session.activeTurnId).toBeNull();
        expect(snapshot.queue).toMatchObject({ paused: true, pauseReason: "interrupted" });
        expect(snapshot.queue.items.map((i) => [i.queueItemId, i.status])).toEqual([[next, "pending"]]);
      }, 60_000);
      const events = await server.services.store.readThread(threadId, 0);
      expect(events.find((e) => e.type === "turn.ended")?.payload).toMatchObject({ turnId, outcome: "interrupted" });
    } finally {
      await agent.close();
    }
  });

  it("an interrupt for a turn whose runtime is gone ends it at once (a restarted runtime has no such turn)", async () => {
    const { threadId } = await user.thread.create.mutate({});
    const token = await server.token("agent");
    // A runtime that starts the turn and dies: its reports are made by hand, then it is gone.
    const dead = createTransport({ url: server.url, token, calls: "socket" });
    await dead.agent.session.mutate({ threadId, status: "ready" });
    const { queueItemId } = await queue(threadId, "runs on a runtime about to vanish");
    await eventually(async () => expect((await user.thread.get.query({ threadId })).queue.items[0]?.status).toBe("sending"), 60_000);
    await dead.agent.turnStarted.mutate({ threadId, queueItemId, turnId: "lost-turn" });
    await dead.close();
    const second = runAgent({ url: server.url, token, onTurn: async () => {} });
    try {
      await user.thread.interrupt.mutate({ threadId });
      await eventually(async () => {
        const snapshot = await user.thread.get.query({ threadId });
        expect(snapshot.session.activeTurnId).toBeNull();
        expect(snapshot.queue.pauseReason).toBe("interrupted");
      }, 60_000);
    } finally {
      await second.close();
    }
  });

  // `npm run chaos` (kill-agent seed 1) found this: the restarted runtime took the steer
  // into the dead turn, so the turn stayed active and the thread never sent again.
  it("a steer claimed into it is refused by the restarted runtime, the turn is ended, and the queue goes on", async () => {
    const { threadId } = await user.thread.create.mutate({});
    const token = await server.token("agent");
    const dead = createTransport({ url: server.url, token, calls: "socket" });
    await dead.agent.session.mutate({ threadId, status: "ready" });
    const { queueItemId: first } = await queue(threadId, "runs on a runtime about to vanish");
    await eventually(async () => expect((await user.thread.get.query({ threadId })).queue.items[0]?.status).toBe("sending"), 60_000);
    await dead.agent.turnStarted.mutate({ threadId, queueItemId: first, turnId: "lost-turn" });
    const { queueItemId: steer } = await queue(threadId, "sent now, into the running turn", "steer");
    await eventually(async () => expect((await user.thread.get.query({ threadId })).queue.items[0]).toMatchObject({ queueItemId: steer, status: "sending" }), 60_000);
    await dead.close();

    const steered: Dispatch[] = [];
    const turns: string[] = [];
    const second = runAgent({
      url: server.url,
      token,
      autoReady: true,
      onTurn: async (turn) => {
        turns.push(turn.dispatch.message.text);
        await turn.start();
      },
      onSteer: async (dispatch) => {
        steered.push(dispatch);
      },
    });
    try {
      await eventually(async () => {
        const snapshot = await user.thread.get.query({ threadId });
        expect(snapshot.session.activeTurnId).toBeNull();
        expect(snapshot.queue.items).toMatchObject([{ queueItemId: steer, status: "failed", failureReason: expect.stringMatching(/ended with the agent runtime/) }]);
      }, 60_000);
      expect(steered).toEqual([]);

      await user.queue.retry.mutate({ threadId, queueItemId: steer });
      await eventually(async () => expect(turns).toEqual(["sent now, into the running turn"]), 60_000);
      await eventually(async () => expect((await user.thread.get.query({ threadId })).queue.items).toEqual([]), 60_000);
    } finally {
      await second.close();
    }
  });

  it("is refused with NO_ACTIVE_TURN when nothing runs", async () => {
    const { threadId } = await user.thread.create.mutate({});
    await expect(user.thread.interrupt.mutate({ threadId })).rejects.toMatchObject({ data: { code: "CONFLICT", reason: "NO_ACTIVE_TURN" } });
  });
});
