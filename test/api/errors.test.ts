import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_ID_LENGTH, MAX_TEXT_LENGTH } from "../../src/domain/index.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { connect, failure, uid, watchEvents, type Client } from "../support/clients.js";
import { databases } from "../support/database.js";

describe.each(databases)("errors as docs/contract.md says, and bad input changes nothing (%s)", (database) => {
  let server: TestServer;
  let user: Client;
  let token: string;

  beforeAll(async () => {
    server = await startTestServer({ database });
    token = await server.token("user");
    user = connect(server, token);
  });
  afterAll(async () => {
    user?.close();
    await server?.close();
  });

  /** A thread with one pending item, and a probe that its version did not move. */
  async function fixture() {
    const threadId = (await user.thread.create.mutate({})).threadId;
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: "m-1", text: "hello" } });
    const { version } = await user.thread.get.query({ threadId });
    const unchanged = async () => expect((await user.thread.get.query({ threadId })).version).toBe(version);
    return { threadId, queueItemId, unchanged };
  }

  it("a wrong type is BAD_REQUEST with data.zodError naming the field", async () => {
    const { threadId, unchanged } = await fixture();
    const error = await failure(
      user.queue.add.mutate({ threadId, message: { messageId: "m-2", text: 42 as unknown as string } }),
    );
    expect(error.data?.code).toBe("BAD_REQUEST");
    expect(error.data?.zodError?.fieldErrors).toHaveProperty("message");
    await unchanged();
  });

  it("queue.edit cannot claim to come from the shared document (via is the bridge's alone): BAD_REQUEST", async () => {
    const { threadId, queueItemId, unchanged } = await fixture();
    const edit = { threadId, queueItemId, text: "from the API", via: "document" } as Parameters<typeof user.queue.edit.mutate>[0];
    const error = await failure(user.queue.edit.mutate(edit));
    expect(error.data?.code).toBe("BAD_REQUEST");
    await unchanged();
  });

  it(`text over ${MAX_TEXT_LENGTH.toLocaleString("en")} characters is BAD_REQUEST`, async () => {
    const { threadId, queueItemId, unchanged } = await fixture();
    const long = "x".repeat(MAX_TEXT_LENGTH + 1);
    for (const call of [
      () => user.queue.add.mutate({ threadId, message: { messageId: "m-2", text: long } }),
      () => user.queue.edit.mutate({ threadId, queueItemId, text: long }),
    ]) {
      const error = await failure(call());
      expect(error.data?.code).toBe("BAD_REQUEST");
      expect(error.data?.zodError).not.toBeNull();
    }
    await unchanged();
    // The limit itself is accepted.
    await user.queue.edit.mutate({ threadId, queueItemId, text: "x".repeat(MAX_TEXT_LENGTH) });
  });

  it(`ids over ${MAX_ID_LENGTH} characters, and empty ids, are BAD_REQUEST`, async () => {
    const { threadId, queueItemId, unchanged } = await fixture();
    const long = "i".repeat(MAX_ID_LENGTH + 1);
    for (const call of [
      () => user.queue.add.mutate({ threadId, message: { messageId: long, text: "x" } }),
      () => user.queue.remove.mutate({ threadId, queueItemId: long }),
      () => user.queue.move.mutate({ threadId, queueItemId, afterId: long }),
      () => user.queue.pause.mutate({ threadId, commandId: long }),
      () => user.queue.remove.mutate({ threadId, queueItemId: "" }),
      () => user.thread.create.mutate({ threadId: long }),
    ]) {
      const error = await failure(call());
      expect(error.data?.code).toBe("BAD_REQUEST");
      expect(error.data?.zodError).not.toBeNull();
    }
    await unchanged();
  });

  it("thread.events with a lastEventId that is not an event seq is BAD_REQUEST", async () => {
    const { threadId } = await fixture();
    for (const lastEventId of ["abc", "-1", "9223372036854775808"]) {
      const events = watchEvents(user, { threadId, lastEventId });
      const error = await events.failed();
      expect(error.data?.code).toBe("BAD_REQUEST");
      expect(error.data?.zodError?.fieldErrors).toHaveProperty("lastEventId");
    }
  });

  it("thread.list with a cursor it did not hand out is BAD_REQUEST", async () => {
    const error = await failure(user.thread.list.query({ cursor: "not-a-cursor" }));
    expect(error.data?.code).toBe("BAD_REQUEST");
  });

  it("thread.list with a cursor holding a date PostgreSQL cannot read, or an id no thread can have, is BAD_REQUEST", async () => {
    const cursor = (createdAt: unknown, id: unknown) => Buffer.from(JSON.stringify([createdAt, id])).toString("base64url");
    const now = new Date().toISOString();
    for (const bad of [
      // Dates JavaScript parses and PostgreSQL does not.
      cursor("1", "t"),
      cursor("May 5", "t"),
      cursor("+275760-09-13T00:00:00.000Z", "t"),
      cursor("0000-01-01T00:00:00.000Z", "t"),
      cursor("2024-02-30T00:00:00.000Z", "t"),
      // Ids no thread can have.
      cursor(now, "a\u0000b"),
      cursor(now, "\ud800"),
      cursor(now, "x".repeat(MAX_ID_LENGTH + 1)),
      cursor(now, 42),
      // Not a cursor at all.
      "\u0000",
      Buffer.from(JSON.stringify([now, "t", "extra"])).toString("base64url"),
    ]) {
      const error = await failure(user.thread.list.query({ cursor: bad }));
      expect({ cursor: bad, code: error.data?.code }).toEqual({ cursor: bad, code: "BAD_REQUEST" });
    }
    // A cursor of the right form still pages.
    expect((await user.thread.list.query({ cursor: cursor(now, "t"), limit: 1 })).items).toHaveLength(1);
  });

  it("an unknown field is BAD_REQUEST rather than silently ignored", async () => {
    const { threadId, unchanged } = await fixture();
    const error = await failure(
      user.queue.add.mutate({ threadId, message: { messageId: "m-2", text: "x" }, sendnow: true } as never),
    );
    expect(error.data?.code).toBe("BAD_REQUEST");
    expect(error.data?.zodError?.formErrors.join(" ")).toContain("sendnow");
    await unchanged();
  });

  it("an unknown thread is NOT_FOUND", async () => {
    const threadId = uid("missing");
    for (const call of [
      () => user.thread.get.query({ threadId }),
      () => user.queue.add.mutate({ threadId, message: { messageId: "m", text: "x" } }),
      () => user.queue.pause.mutate({ threadId }),
      () => user.thread.archive.mutate({ threadId }),
    ]) {
      expect((await failure(call())).data).toMatchObject({ code: "NOT_FOUND", reason: "THREAD_NOT_FOUND" });
    }
  });

  it("an unknown item is NOT_FOUND", async () => {
    const { threadId, queueItemId, unchanged } = await fixture();
    for (const call of [
      () => user.queue.edit.mutate({ threadId, queueItemId: "nope", text: "x" }),
      () => user.queue.remove.mutate({ threadId, queueItemId: "nope" }),
      () => user.queue.retry.mutate({ threadId, queueItemId: "nope" }),
      () => user.queue.sendNow.mutate({ threadId, queueItemId: "nope" }),
      () => user.queue.move.mutate({ threadId, queueItemId, afterId: "nope" }),
    ]) {
      expect((await failure(call())).data).toMatchObject({ code: "NOT_FOUND", reason: "ITEM_NOT_FOUND" });
    }
    await unchanged();
  });

  it("a reused messageId with another text is CONFLICT MESSAGE_ID_REUSED", async () => {
    const { threadId, unchanged } = await fixture();
    const error = await failure(user.queue.add.mutate({ threadId, message: { messageId: "m-1", text: "other" } }));
    expect(error.data).toMatchObject({ code: "CONFLICT", reason: "MESSAGE_ID_REUSED" });
    await unchanged();
  });

  it("queueing onto an archived thread is CONFLICT THREAD_ARCHIVED", async () => {
    const { threadId } = await fixture();
    await user.thread.archive.mutate({ threadId });
    const { version } = await user.thread.get.query({ threadId });
    const error = await failure(user.queue.add.mutate({ threadId, message: { messageId: "m-2", text: "x" } }));
    expect(error.data).toMatchObject({ code: "CONFLICT", reason: "THREAD_ARCHIVED" });
    expect((await user.thread.get.query({ threadId })).version).toBe(version);
  });

  it("a commandId reused for a different command is CONFLICT", async () => {
    const { threadId } = await fixture();
    await user.queue.pause.mutate({ threadId, commandId: "c-1" });
    const { version } = await user.thread.get.query({ threadId });
    const error = await failure(user.queue.resume.mutate({ threadId, commandId: "c-1" }));
    expect(error.data).toMatchObject({ code: "CONFLICT", reason: "COMMAND_ID_REUSED" });
    expect((await user.thread.get.query({ threadId })).version).toBe(version);
  });

  it("a malformed JSON body is BAD_REQUEST", async () => {
    const { threadId, unchanged } = await fixture();
    const response = await fetch(`${server.url}/trpc/queue.pause`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: `{"threadId": "${threadId}"`,
    });
    expect(response.status).toBe(400);
    const body = (await response.json()) as { error: { data: { code: string } } };
    expect(body.error.data.code).toBe("BAD_REQUEST");
    await unchanged();
  });
});
