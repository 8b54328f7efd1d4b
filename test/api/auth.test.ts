import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { SignJWT } from "jose";
import { createAuth } from "../../src/auth/tokens.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, databases, failure, uid, watchEvents, type Client } from "./harness.js";

describe("token verification", () => {
  it("a token that was accepted is refused once it expires (clock scripted): remembering it never extends it", async () => {
    const auth = createAuth("the secret");
    const token = await auth.issue({ sub: "alice", workspaceId: "acme", role: "user" }, { expiresIn: "1h" });
    expect((await auth.verify(token)).workspaceId).toBe("acme");
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime(Date.now() + 61 * 60_000);
      await expect(auth.verify(token)).rejects.toThrow(/invalid token: "exp" claim timestamp check failed/);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe.each(databases)("authentication and authorization (%s)", (database) => {
  let server: TestServer;
  let owner: Client;
  let ownerAgent: Client;
  let stranger: Client;
  let strangerAgent: Client;
  let threadId: string;
  let queueItemId: string;

  beforeAll(async () => {
    server = await startTestServer({ database });
    owner = connect(server, await server.token("user", "acme", "alice"));
    ownerAgent = connect(server, await server.token("agent", "acme", "runner"));
    stranger = connect(server, await server.token("user", "globex", "mallory"));
    strangerAgent = connect(server, await server.token("agent", "globex", "runner"));
    ({ threadId } = await owner.thread.create.mutate({ threadId: uid("secret"), title: "acme's plans" }));
    ({ queueItemId } = await owner.queue.add.mutate({ threadId, message: { messageId: "m", text: "confidential" } }));
  });
  afterAll(async () => {
    for (const client of [owner, ownerAgent, stranger, strangerAgent]) client?.close();
    await server?.close();
  });

  const version = async () => (await owner.thread.get.query({ threadId })).version;

  it("no token is UNAUTHORIZED, over HTTP and over WebSocket", async () => {
    const anonymous = connect(server, null);
    try {
      expect((await failure(anonymous.thread.list.query())).data?.code).toBe("UNAUTHORIZED");
      expect((await failure(anonymous.thread.create.mutate({}))).data?.code).toBe("UNAUTHORIZED");
      expect((await watchEvents(anonymous, { threadId }).failed()).data?.code).toBe("UNAUTHORIZED");
    } finally {
      anonymous.close();
    }
  });

  it("a token with a bad signature, or expired, is UNAUTHORIZED", async () => {
    const forged = await createAuth("not the server's secret").issue({ sub: "eve", workspaceId: "acme", role: "admin" });
    const expired = await server.services.auth.issue({ sub: "alice", workspaceId: "acme", role: "user" }, { expiresIn: "-1m" });
    for (const token of [forged, expired, "not-a-jwt"]) {
      const client = connect(server, token);
      try {
        const error = await failure(client.thread.get.query({ threadId }));
        expect(error.data?.code).toBe("UNAUTHORIZED");
        expect(JSON.stringify(error)).not.toContain("confidential");
        expect((await watchEvents(client, { threadId }).failed()).data?.code).toBe("UNAUTHORIZED");
      } finally {
        client.close();
      }
    }
  });


  it("a token we signed but without valid claims (unknown role, no workspace) is UNAUTHORIZED", async () => {
    const key = new TextEncoder().encode(server.services.config.secret);
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject("alice").sign(key);
    for (const token of [await sign({ ws: "acme", role: "root" }), await sign({ role: "admin" })]) {
      const client = connect(server, token);
      try {
        expect((await failure(client.thread.get.query({ threadId }))).data?.code).toBe("UNAUTHORIZED");
      } finally {
        client.close();
      }
    }
  });

  it("another workspace's thread is NOT_FOUND, never its data, for reads", async () => {
    const error = await failure(stranger.thread.get.query({ threadId }));
    expect(error.data).toMatchObject({ code: "NOT_FOUND", reason: "THREAD_NOT_FOUND" });
    expect(JSON.stringify(error)).not.toMatch(/confidential|acme/);

    const { items } = await stranger.thread.list.query({ limit: 200 });
    expect(items.map((t) => t.threadId)).not.toContain(threadId);
    expect((await owner.thread.list.query({ limit: 200 })).items.map((t) => t.threadId)).toContain(threadId);
  });

  it("another workspace's thread is NOT_FOUND on thread.events, and nothing is streamed", async () => {
    const events = watchEvents(stranger, { threadId });
    const error = await events.failed();
    expect(error.data?.code).toBe("NOT_FOUND");
    expect(events.received).toEqual([]);
  });

  it("another workspace's thread is NOT_FOUND for every mutation, and nothing changes", async () => {
    const before = await version();
    for (const call of [
      () => stranger.queue.add.mutate({ threadId, message: { messageId: "m2", text: "injected" } }),
      () => stranger.queue.edit.mutate({ threadId, queueItemId, text: "defaced" }),
      () => stranger.queue.move.mutate({ threadId, queueItemId, afterId: null }),
      () => stranger.queue.remove.mutate({ threadId, queueItemId }),
      () => stranger.queue.retry.mutate({ threadId, queueItemId }),
      () => stranger.queue.sendNow.mutate({ threadId, queueItemId }),
      () => stranger.queue.pause.mutate({ threadId }),
      () => stranger.queue.resume.mutate({ threadId }),
      () => stranger.thread.archive.mutate({ threadId }),
      () => stranger.thread.delete.mutate({ threadId }),
      () => strangerAgent.agent.session.mutate({ threadId, status: "ready" }),
      () => strangerAgent.agent.turnStarted.mutate({ threadId, queueItemId, turnId: "t" }),
      () => strangerAgent.agent.turnStartFailed.mutate({ threadId, queueItemId, reason: "x", retryable: false }),
      () => strangerAgent.agent.turnEnded.mutate({ threadId, turnId: "t", outcome: "completed" }),
    ]) {
      expect((await failure(call())).data?.code).toBe("NOT_FOUND");
    }
    expect(await version()).toBe(before);
    expect((await owner.thread.get.query({ threadId })).queue.items.map((i) => i.text)).toEqual(["confidential"]);
  });

  it("thread.create cannot probe another workspace's ids: an id taken there is a fresh key here, answered like an unused one", async () => {
    // Before ids were scoped, this answered CONFLICT THREAD_EXISTS while an unused id succeeded.
    const taken = await stranger.thread.create.mutate({ threadId, title: "mine now" });
    const unused = await stranger.thread.create.mutate({ threadId: uid("unused"), title: "mine too" });
    expect(taken.threadId).not.toBe(threadId);
    for (const created of [taken, unused]) expect((await stranger.thread.get.query(created)).version).toBe(1);
    // The owner's thread is untouched, and the stranger's key names its own thread only.
    expect((await owner.thread.get.query({ threadId })).title).toBe("acme's plans");
    expect((await stranger.thread.get.query(taken)).title).toBe("mine now");
    expect((await failure(stranger.thread.get.query({ threadId }))).data?.code).toBe("NOT_FOUND");
    // Nor can the stored id be named back: a key is always derived again, inside the caller's workspace.
    expect((await stranger.thread.create.mutate({ threadId: taken.threadId })).threadId).not.toBe(taken.threadId);
  });

  it("a user token on agent procedures, and an agent token on user procedures, is FORBIDDEN", async () => {
    const before = await version();
    for (const call of [
      () => owner.agent.session.mutate({ threadId, status: "ready" }),
      () => owner.agent.turnStarted.mutate({ threadId, queueItemId, turnId: "t" }),
      () => owner.agent.turnStartFailed.mutate({ threadId, queueItemId, reason: "x", retryable: true }),
      () => owner.agent.turnEnded.mutate({ threadId, turnId: "t", outcome: "completed" }),
      () => ownerAgent.thread.get.query({ threadId }),
      () => ownerAgent.thread.list.query(),
      () => ownerAgent.thread.create.mutate({}),
      () => ownerAgent.queue.add.mutate({ threadId, message: { messageId: "m3", text: "x" } }),
      () => ownerAgent.queue.pause.mutate({ threadId }),
      () => ownerAgent.thread.delete.mutate({ threadId }),
    ]) {
      expect((await failure(call())).data?.code).toBe("FORBIDDEN");
    }
    expect((await watchEvents(ownerAgent, { threadId }).failed()).data?.code).toBe("FORBIDDEN");
    expect(await version()).toBe(before);
  });

  it("the owning workspace's agent may report on the thread", async () => {
    const before = await version();
    expect(await ownerAgent.agent.session.mutate({ threadId, status: "starting" })).toEqual({ version: before + 1 });
  });
});

describe("verified tokens", () => {
  it("a token accepted before is refused once it has expired: the server remembers a verified token only until its expiry", async () => {
    const auth = createAuth("a secret of the test, long enough for HS256");
    const token = await auth.issue({ sub: "alice", workspaceId: "acme", role: "user" }, { expiresIn: "2s" });
    const { exp } = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number };
    for (let i = 0; i < 3; i++) expect(await auth.verify(token)).toMatchObject({ sub: "alice", workspaceId: "acme", role: "user" });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, exp * 1000 - Date.now()) + 50));
    await expect(auth.verify(token)).rejects.toThrow(/invalid token/);
  });
});
