import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UNSTORABLE_MESSAGE } from "../../src/domain/index.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { httpCall, RawSocket } from "../support/trpc-raw.js";
import { catalogue, poisoned, routerPaths, type Target } from "./catalogue.js";
import { connect, databases, uid, type Client } from "./harness.js";

/** Strings PostgreSQL cannot store: each must be bad input of its own call, never a 500. */
const POISONS = { NUL: "\u0000", "a lone high surrogate": "\ud800", "a lone low surrogate": "\udc00" } as const;

describe.each(databases)("NUL and lone surrogates in any string are BAD_REQUEST and change nothing (%s)", (database) => {
  let server: TestServer;
  let user: Client;
  const tokens: Record<"user" | "agent", string> = { user: "", agent: "" };
  let target: Target;

  beforeAll(async () => {
    server = await startTestServer({ database });
    tokens.user = await server.token("user");
    tokens.agent = await server.token("agent");
    user = connect(server, tokens.user);
    const threadId = (await user.thread.create.mutate({})).threadId;
    const { queueItemId } = await user.queue.add.mutate({ threadId, message: { messageId: "m-1", text: "hello" } });
    target = { threadId, queueItemId };
  });
  afterAll(async () => {
    user?.close();
    await server?.close();
  });

  const state = async () => ({ thread: await user.thread.get.query({ threadId: target.threadId }), list: await user.thread.list.query({ limit: 200 }) });

  it("the catalogue of these tests names every procedure of the router", () => {
    expect(catalogue.map((p) => p.path).sort()).toEqual(routerPaths());
  });

  for (const [name, poison] of Object.entries(POISONS)) {
    it(`${name} in any string of any procedure's input, over HTTP and over WebSocket`, async () => {
      const before = await state();
      const sockets = { user: await RawSocket.open(server.wsUrl, tokens.user), agent: await RawSocket.open(server.wsUrl, tokens.agent) };
      try {
        let calls = 0;
        for (const spec of catalogue) {
          for (const [field, input] of poisoned(spec.input(target), poison)) {
            const answers = [await httpCall(server.url, tokens[spec.role], spec.kind, spec.path, input), await sockets[spec.role].call(spec.kind, spec.path, input)];
            for (const answer of answers) {
              expect({ procedure: spec.path, field, code: answer.error?.data?.code, status: answer.status }).toEqual({
                procedure: spec.path,
                field,
                code: "BAD_REQUEST",
                status: 400,
              });
              calls++;
            }
          }
        }
        expect(calls).toBeGreaterThan(50);
      } finally {
        sockets.user.close();
        sockets.agent.close();
      }
      expect(await state()).toEqual(before);
    });
  }

  it("the refusal names the rule, on the field that broke it", async () => {
    const answer = await httpCall(server.url, tokens.user, "mutation", "queue.edit", { ...target, text: "a\u0000b" });
    expect(answer.error?.data?.zodError).toEqual({ formErrors: [], fieldErrors: { text: [UNSTORABLE_MESSAGE] } });
  });

  it("a subscription over HTTP is a server-sent event stream that starts like one over WebSocket", async () => {
    const answer = await httpCall(server.url, tokens.user, "subscription", "thread.events", { threadId: target.threadId });
    expect(answer).toEqual({ status: 200, error: null, result: { type: "started" } });
  });
});
