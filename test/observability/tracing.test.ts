import { context, propagation, SpanStatusCode, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { runAgent, type Agent } from "../../client/agent.js";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import { InProcessBus } from "../../src/cluster/bus.js";
import { cmd, testEngine, user as testActor } from "../engine/harness.js";
import { startTestServer, type TestServer } from "../support/server.js";

const tracer = trace.getTracer("test");

describe("OpenTelemetry: one trace from the tRPC command to the agent's turnStarted (SDK's in-memory exporter)", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let server: TestServer;
  let user: TurnqueueClient;
  let agent: Agent;
  let started: string | null = null;

  beforeAll(async () => {
    // What an operator's `--import` setup file does: register an SDK (W3C propagation included).
    provider.register();
    server = await startTestServer();
    user = createTurnqueueClient({ url: server.url, token: await server.token("user") });
    agent = runAgent({
      url: server.url,
      token: await server.token("agent"),
      autoReady: true,
      async onTurn(turn) {
        started = await turn.start();
        return { outcome: "completed" };
      },
    });
  });
  afterAll(async () => {
    await agent?.close();
    await user?.close();
    await server?.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  it("queue.add → decide, append (the claim with it), publish → dispatch → turnStarted, parent by parent", async () => {
    const { threadId } = await user.thread.create.mutate({ title: "traced" });
    // The session is ready before the item arrives, so the item's own command claims it, in its own append.
    await vi.waitUntil(async () => (await user.thread.get.query({ threadId })).session.status === "ready", { timeout: 60_000, interval: 100 });
    exporter.reset();
    await user.queue.add.mutate({ threadId, message: { messageId: "traced-1", text: "follow the trace" } });
    await vi.waitUntil(() => started !== null, { timeout: 60_000, interval: 100 });
    await vi.waitUntil(() => spans().some((s) => s.name === "command agent.turnStarted"), { timeout: 30_000, interval: 50 });

    const all = spans();
    const byId = new Map(all.map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: ReadableSpan) => byId.get(s.parentSpanContext?.spanId ?? "");
    const ancestry = (s: ReadableSpan | undefined): string[] => (s ? [s.name, ...ancestry(parentOf(s))] : []);

    const turnStarted = all.find((s) => s.name === "command agent.turnStarted")!;
    expect(ancestry(turnStarted)).toEqual([
      "command agent.turnStarted",
      "trpc agent.turnStarted",
      "dispatch",
      "command queue.add",
      "trpc queue.add",
    ]);
    const add = all.find((s) => s.name === "command queue.add")!;
    const children = all.filter((s) => parentOf(s) === add).map((s) => s.name);
    expect(children).toEqual(expect.arrayContaining(["decide", "append", "publish", "dispatch"]));
    // No second command: the drain reactor had nothing left to claim.
    expect(all.filter((s) => s.name === "command drain.claim")).toEqual([]);
    // One trace, all of it.
    expect(new Set([turnStarted, add].map((s) => s.spanContext().traceId)).size).toBe(1);
  });

  it("a commit the bus refuses (fault injected: a bus whose publish fails) ends its publish span as failed; the command is still acknowledged", async () => {
    const refusing = new InProcessBus();
    refusing.publish = () => Promise.reject(new Error("bus down (injected)"));
    const engine = testEngine(server.services.store, { bus: refusing });
    try {
      exporter.reset();
      const done = await tracer.startActiveSpan("caller", (caller) =>
        engine.execute(`traced-${Date.now()}`, cmd({ type: "thread.create", workspaceId: "local" }), testActor).finally(() => caller.end()),
      );
      expect(done.version).toBe(1);
      await vi.waitUntil(() => spans().some((s) => s.name === "publish"), { timeout: 30_000, interval: 20 });
      const publish = spans().find((s) => s.name === "publish")!;
      expect(publish.status).toMatchObject({ code: SpanStatusCode.ERROR, message: "the bus refused the commit" });
      expect(spans().find((s) => s.name === "append")!.status.code).not.toBe(SpanStatusCode.ERROR);
    } finally {
      await engine.close();
    }
  });

  const spans = () => exporter.getFinishedSpans();
});
