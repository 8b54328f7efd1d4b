import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { catalogue, routerPaths, type ProcedureSpec, type Target } from "../api/catalogue.js";
import { databases } from "../support/database.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { httpCall, RawSocket, type RawAnswer } from "../support/trpc-raw.js";

/**
 * Every procedure's input, fuzzed from its valid shape (a leaf replaced by a hostile value, a
 * key added or dropped, or any JSON at all), against a real server over HTTP and WebSocket.
 * Asserted: never a 5xx, a refusal appends nothing, the server keeps serving, memory stays
 * bounded. `npm test` runs a short pass on a fixed seed; `npm run fuzz` a long one
 * (FUZZ_RUNS, and FUZZ_SEED to replay a failure fast-check reported).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const SEED = Number(process.env.FUZZ_SEED ?? 20_260_512);

/** Strings and numbers that broke or could break a layer below validation. */
const hostileString = fc.oneof(
  fc.constantFrom("\u0000", "a\u0000b", "\ud800", "\udfff", "x\ud800y", "\ud83d\ude00", "\u202e", "\ufeff", "", " ", "null", "1", "-1"),
  fc.constantFrom("May 5", "+275760-09-13T00:00:00.000Z", "0000-01-01T00:00:00.000Z", "9223372036854775808", "../../etc/passwd", "'; drop table \"Event\"; --"),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.integer({ min: 0, max: 220_000 }).map((n) => "x".repeat(n)),
);
const hostileNumber = fc.constantFrom(0, -0, -1, 0.5, 1e308, -1e308, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 1e-320);
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileNumber },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { "\u0000": 1 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
);

type Path = (string | number)[];

/** Every place in a value a fuzzer may change: the value itself and each nested field. */
function places(value: unknown, at: Path = []): Path[] {
  const out: Path[] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...places(v, [...at, i])));
  else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) out.push(...places(v, [...at, k]));
  return out;
}

function update(value: unknown, at: Path, change: (old: unknown) => unknown): unknown {
  if (at.length === 0) return change(value);
  const [head, ...rest] = at;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as object) }) as Record<string | number, unknown>;
  copy[head] = update(copy[head], rest, change);
  return copy;
}

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("replace" as const), place: fc.nat(), value: hostile }),
  fc.record({ kind: fc.constant("add-key" as const), place: fc.nat(), key: fc.oneof(hostileString, fc.constantFrom("__proto__", "constructor")), value: hostile }),
  fc.record({ kind: fc.constant("drop" as const), place: fc.nat() }),
  fc.record({ kind: fc.constant("anything" as const), value: fc.jsonValue({ maxDepth: 4 }) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never;

function mutate(valid: unknown, m: Mutation): unknown {
  if (m.kind === "anything") return m.value;
  const all = places(valid);
  const at = all[m.place % all.length];
  switch (m.kind) {
    case "replace":
      return update(valid, at, () => m.value);
    case "add-key":
      return update(valid, at, (old) => (old && typeof old === "object" && !Array.isArray(old) ? { ...old, [m.key as string]: m.value } : old));
    case "drop":
      if (at.length === 0) return undefined;
      return update(valid, at.slice(0, -1), (parent) => {
        if (Array.isArray(parent)) return parent.filter((_, i) => i !== at.at(-1));
        const { [at.at(-1)!]: _dropped, ...rest } = parent as Record<string | number, unknown>;
        return rest;
      });
  }
}

const fuzzCase = fc.record({
  procedure: fc.constantFrom(...catalogue),
  transport: fc.constantFrom("http" as const, "ws" as const),
  mutation,
});

describe.each(databases)("tRPC fuzz: every procedure's input over HTTP and WebSocket (%s)", (database) => {
  let server: TestServer;
  const tokens = { user: "", agent: "" };
  const sockets: Partial<Record<"user" | "agent", RawSocket>> = {};
  let target: Target;

  beforeAll(async () => {
    server = await startTestServer({ database });
    tokens.user = await server.token("user", "fuzz", "fuzzer");
    tokens.agent = await server.token("agent", "fuzz", "fuzzer");
    target = await newTarget();
  });
  afterAll(async () => {
    for (const socket of Object.values(sockets)) socket?.close();
    await server?.close();
  });

  /** A thread with one pending item, made through the API like any client would. */
  async function newTarget(): Promise<Target> {
    const created = await httpCall(server.url, tokens.user, "mutation", "thread.create", {});
    const threadId = (created.result as { threadId: string }).threadId;
    const added = await httpCall(server.url, tokens.user, "mutation", "queue.add", { threadId, message: { messageId: "m", text: "fuzz" } });
    return { threadId, queueItemId: (added.result as { queueItemId: string }).queueItemId };
  }

  /** What the fuzzing principals have written: a refused call must add nothing to it. */
  const written = () => server.services.db.prisma.event.count({ where: { actor: { in: ["user:fuzzer", "agent:fuzzer"] } } });

  async function socket(role: "user" | "agent"): Promise<RawSocket> {
    const open = sockets[role];
    if (open && !open.closed) return open;
    return (sockets[role] = await RawSocket.open(server.wsUrl, tokens[role]));
  }

  async function call(spec: ProcedureSpec, transport: "http" | "ws", input: unknown): Promise<RawAnswer> {
    if (transport === "http") return httpCall(server.url, tokens[spec.role], spec.kind, spec.path, input);
    return (await socket(spec.role)).call(spec.kind, spec.path, input);
  }

  it("the catalogue fuzzed covers every procedure of the router", () => {
    expect(catalogue.map((p) => p.path).sort()).toEqual(routerPaths());
  });

  // A limit against hangs that grows with the runs (a long pass takes minutes on a busy machine).
  it(`${RUNS} fuzzed calls: never a 5xx, a refusal writes nothing, memory stays bounded`, { timeout: 120_000 + RUNS * 1_000 }, async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(fuzzCase, async ({ procedure, transport, mutation: m }) => {
        const input = mutate(procedure.input(target), m);
        const before = await written();
        const answer = await call(procedure, transport, input);
        const where = `${transport} ${procedure.path} ${JSON.stringify(input)?.slice(0, 200)}`;
        expect(answer.status, where).toBeLessThan(500);
        if (answer.error) {
          refused++;
          expect(answer.status, where).toBeGreaterThanOrEqual(400);
          expect(answer.error.message, where).not.toBe("internal error");
          expect(await written(), `a refused call wrote events: ${where}`).toBe(before);
        } else if (["thread.delete", "thread.archive", "queue.remove", "queue.sendNow", "queue.setDelivery"].includes(procedure.path)) {
          // The target no longer takes every command: the next cases get a fresh one.
          target = await newTarget();
        }
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    // Most fuzzed inputs are bad ones: the property must have seen refusals, not only successes.
    expect(refused).toBeGreaterThan(RUNS / 4);
    // Still serving, over both doors.
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await (await socket("user")).call("query", "thread.get", { threadId: target.threadId })).error).toBeNull();
    // Generous: a leak per call (a subscription never released, a buffered body) grows far past it.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 << 20);
  });
});
