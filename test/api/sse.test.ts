import { createTRPCClient, httpSubscriptionLink, TRPCClientError, type TRPCClient } from "@trpc/client";
import { EventSource } from "eventsource";
import { decodeJwt } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AppRouter } from "../../src/api/router.js";
import type { ThreadEvent } from "../../src/api/thread-events.js";
import { defaultLimits } from "../../src/config.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { eventually } from "../support/poll.js";
import { httpCall, RawSocket } from "../support/trpc-raw.js";
import { connect, uid, type Client } from "./harness.js";

const limits = { maxConnectionsPerToken: 2 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/**
 * tRPC's httpSubscriptionLink on an EventSource, which (like a browser's) cannot set a header:
 * the token travels as tRPC's `connectionParams` in the stream's URL.
 */
function sseClient(server: TestServer, token: string): TRPCClient<AppRouter> {
  return createTRPCClient<AppRouter>({
    links: [httpSubscriptionLink({ url: `${server.url}/trpc`, connectionParams: () => ({ token }), EventSource })],
  });
}

interface Watch {
  events: ThreadEvent[];
  error: TRPCClientError<AppRouter> | null;
  stop(): void;
}

function watch(client: TRPCClient<AppRouter>, input: { threadId: string; lastEventId?: string }): Watch {
  const watched: Watch = { events: [], error: null, stop: () => {} };
  const subscription = client.thread.events.subscribe(input, {
    onData: (event) => watched.events.push(event.data as ThreadEvent),
    onError: (error) => (watched.error = error as TRPCClientError<AppRouter>),
  });
  watched.stop = () => subscription.unsubscribe();
  return watched;
}

describe("thread.events over server-sent events (tRPC's httpSubscriptionLink, a browser's EventSource)", { timeout: 120_000 }, () => {
  let server: TestServer;
  let user: Client;
  let threadId: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { limits: { ...defaultLimits, ...limits } } });
    user = connect(server, await server.token("user", "local", "owner"));
    ({ threadId } = await user.thread.create.mutate({ title: "streamed" }));
  });
  afterAll(async () => {
    user?.close();
    await server?.close();
  });

  it("signs in through connectionParams, streams the log then live events, and resumes after lastEventId", async () => {
    const client = sseClient(server, await server.token("user", "local", "browser"));
    const live = watch(client, { threadId });
    try {
      await eventually(() => expect(live.events.map((e) => e.type)).toEqual(["thread.created"]));
      await user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text: "over SSE" } });
      await eventually(() => expect(live.events.map((e) => e.type)).toEqual(["thread.created", "queue.item-added"]));
      expect(live.error).toBeNull();
    } finally {
      live.stop();
    }
    const resumed = watch(client, { threadId, lastEventId: live.events[0].seq });
    try {
      await eventually(() => expect(resumed.events.map((e) => e.type)).toEqual(["queue.item-added"]));
    } finally {
      resumed.stop();
    }
  });

  it("signs in with the Authorization header too (a plain HTTP client), and without a token the stream is UNAUTHORIZED", async () => {
    const token = await server.token("user", "local", "curl");
    expect(await httpCall(server.url, token, "subscription", "thread.events", { threadId })).toEqual({ status: 200, error: null, result: { type: "started" } });
    const anonymous = await httpCall(server.url, null, "subscription", "thread.events", { threadId });
    expect(anonymous.error?.data?.code).toBe("UNAUTHORIZED");
    const stranger = await httpCall(server.url, await server.token("user", "elsewhere"), "subscription", "thread.events", { threadId });
    expect(stranger.error?.data?.code).toBe("NOT_FOUND");
  });

  it("a stream opened with a short-lived token ends with UNAUTHORIZED (token expired) at its expiry, even while no event comes", async () => {
    const token = await server.services.auth.issue({ sub: "short", workspaceId: "local", role: "user" }, { expiresIn: "3s" });
    const stream = watch(sseClient(server, token), { threadId });
    try {
      await eventually(() => expect(stream.events.length).toBeGreaterThan(0));
      await sleep(decodeJwt(token).exp! * 1000 - Date.now() + 300);
      await eventually(() => expect(stream.error?.data?.code).toBe("UNAUTHORIZED"));
      expect(stream.error?.message).toMatch(/token expired/);
      const seen = stream.events.length;
      await user.queue.add.mutate({ threadId, message: { messageId: uid("m"), text: "after expiry" } });
      await sleep(500);
      expect(stream.events).toHaveLength(seen);
    } finally {
      stream.stop();
    }
  });

  it(`a stream is one of the token's ${limits.maxConnectionsPerToken} connections, shared with its WebSockets: one more is TOO_MANY_REQUESTS, and ending one frees its slot`, async () => {
    const token = await server.token("user", "local", "limited");
    const first = watch(sseClient(server, token), { threadId });
    const socket = await RawSocket.open(server.wsUrl, token);
    try {
      await eventually(() => expect(first.events.length).toBeGreaterThan(0));
      expect((await socket.call("query", "thread.get", { threadId })).error).toBeNull();
      const refused = await httpCall(server.url, token, "subscription", "thread.events", { threadId });
      expect(refused.error?.data?.code).toBe("TOO_MANY_REQUESTS");
      expect(refused.error?.message).not.toContain(token);

      first.stop();
      await eventually(async () => expect((await httpCall(server.url, token, "subscription", "thread.events", { threadId })).error).toBeNull());
    } finally {
      first.stop();
      socket.close();
    }
  });
});
