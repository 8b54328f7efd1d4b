import * as encoding from "lib0/encoding";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { createAuth } from "../../src/auth/tokens.js";
import type { TestServer } from "../support/server.js";
import { connect, converged, createThread, exec, yMessage, projection, rawConnect, startCollabServer, synced } from "./harness.js";
import { until } from "../support/poll.js";

describe("who may open a thread's document", () => {
  let server: TestServer;
  let threadId: string;
  beforeAll(async () => {
    server = await startCollabServer();
    ({ threadId } = await createThread(server, ["secret plans"]));
  });
  afterAll(() => server?.close());

  it.each([
    ["no token", async () => undefined, 401],
    ["a malformed token", async () => "not-a-jwt", 401],
    ["a token signed with another secret", async () => createAuth("another-secret-another-secret-0123456789").issue({ sub: "u", workspaceId: "local", role: "user" }), 401],
    ["a token of another workspace", async () => server.token("user", "elsewhere"), 404],
    ["an agent token", async () => server.token("agent"), 403],
  ])("refuses %s before sending any document byte", async (_name, token, status) => {
    const raw = rawConnect(server, threadId, await token());
    expect(await raw.outcome).toEqual({ refused: status });
    expect(raw.messages).toEqual([]);
  });

  it("refuses an unknown and a deleted thread with 404", async () => {
    const token = await server.token();
    expect(await rawConnect(server, "no-such-thread", token).outcome).toEqual({ refused: 404 });
    const deleted = await createThread(server, ["gone"]);
    await exec(server, deleted.threadId, { type: "thread.delete" });
    expect(await rawConnect(server, deleted.threadId, token).outcome).toEqual({ refused: 404 });
  });

  it("a WebsocketProvider with another workspace's token never receives the queue", async () => {
    const outsider = connect(server, threadId, await server.token("user", "elsewhere"));
    const insider = connect(server, threadId, await server.token());
    await synced([insider]);
    await until(() => outsider.closes.length >= 2, () => outsider.closes);
    expect(outsider.provider.synced).toBe(false);
    expect(outsider.view().items).toEqual([]);
    expect(insider.view().items.map((i) => i.text)).toEqual(["secret plans"]);
    outsider.destroy();
    insider.destroy();
  });
});

describe("a bad message closes only its own connection", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startCollabServer();
  });
  afterAll(() => server?.close());

  const garbage = new Uint8Array(64).map((_, i) => (i * 73 + 11) % 256);
  const oversized = new Uint8Array((1 << 20) + 16);
  const sideDoc = new Y.Doc();
  sideDoc.getArray("elsewhere").insert(0, ["not part of the schema"]);
  const cases: [string, Uint8Array, number, RegExp][] = [
    ["an unknown message type", yMessage((e) => encoding.writeVarUint(e, 99)), 4400, /unknown message type 99/],
    ["an unknown sync message type", yMessage((e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint(e, 7)), 4400, /unknown sync message type 7/],
    ["garbage bytes as an update", yMessage((e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint(e, 2), (e) => encoding.writeVarUint8Array(e, garbage)), 4400, /malformed message/],
    ["a truncated message", yMessage((e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint(e, 2), (e) => encoding.writeVarUint(e, 5000)), 4400, /malformed message/],
    ["garbage as an awareness update", yMessage((e) => encoding.writeVarUint(e, 1), (e) => encoding.writeVarUint8Array(e, garbage)), 4400, /malformed awareness update/],
    ["an update larger than the limit", yMessage((e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint(e, 2), (e) => encoding.writeVarUint8Array(e, oversized)), 4413, /exceeds the 1048576-byte limit/],
    ["an update to a root type outside the schema", yMessage((e) => encoding.writeVarUint(e, 0), (e) => encoding.writeVarUint(e, 2), (e) => encoding.writeVarUint8Array(e, Y.encodeStateAsUpdate(sideDoc))), 4403, /writes to "elsewhere" are not allowed/],
  ];

  it.each(cases)("%s: closed with a clear reason, the other device and the data unharmed", async (_name, message, code, reason) => {
    const { threadId, ids } = await createThread(server, ["keep me"]);
    const bystander = connect(server, threadId, await server.token());
    await synced([bystander]);
    const before = await projection(server, threadId);

    const raw = rawConnect(server, threadId, await server.token("user", "local", "mallory"));
    expect(await raw.outcome).toEqual({ opened: true });
    await until(() => raw.messages.length > 0);
    raw.ws.send(message);
    const closed = await raw.closed;
    expect(closed.code).toBe(code);
    expect(closed.reason).toMatch(reason);

    expect(await projection(server, threadId)).toEqual(before);
    // The bystander still edits, and its edit still becomes a command.
    bystander.text(ids[0]).insert(0, "still ");
    await until(async () => (await projection(server, threadId)).items[0]?.text === "still keep me");
    await converged(server, threadId, [bystander]);
    expect(bystander.closes).toEqual([]);
    bystander.destroy();
  });
});
