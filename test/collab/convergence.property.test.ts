import fc from "fast-check";
import { generateKeyBetween } from "fractional-indexing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestServer } from "../support/server.js";
import { addItem, connect, converged, createThread, exec, startCollabServer, synced, type Device } from "./harness.js";

/** One step of a random session: a device types, deletes, reorders or drops off; the API edits, adds, removes. */
type Op =
  | { kind: "type"; device: number; item: number; at: number; text: string }
  | { kind: "erase"; device: number; item: number; at: number; length: number }
  | { kind: "move"; device: number; item: number; after: number }
  | { kind: "toggle"; device: number }
  | { kind: "apiEdit"; item: number; text: string }
  | { kind: "apiAdd"; text: string }
  | { kind: "apiRemove"; item: number }
  | { kind: "pause" };

const DEVICES = 3;
const small = fc.nat({ max: 40 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("type" as const), device: fc.nat({ max: DEVICES - 1 }), item: small, at: small, text: fc.string({ minLength: 1, maxLength: 4 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("erase" as const), device: fc.nat({ max: DEVICES - 1 }), item: small, at: small, length: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("move" as const), device: fc.nat({ max: DEVICES - 1 }), item: small, after: small }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("toggle" as const), device: fc.nat({ max: DEVICES - 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("apiEdit" as const), item: small, text: fc.string({ maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("apiAdd" as const), text: fc.string({ maxLength: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("apiRemove" as const), item: small }) },
  { weight: 1, arbitrary: fc.constant({ kind: "pause" as const }) },
);

const pick = <T>(list: T[], n: number): T | undefined => (list.length ? list[n % list.length] : undefined);

describe("random concurrent sessions (property)", () => {
  let server: TestServer;
  let token: string;
  beforeAll(async () => {
    server = await startCollabServer();
    token = await server.token();
  });
  afterAll(() => server?.close());

  it("every device ends with the same document, equal to the projection", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 30 }), async (ops) => {
        const { threadId } = await createThread(server, ["alpha", "beta", "gamma"]);
        const devices: Device[] = Array.from({ length: DEVICES }, () => connect(server, threadId, token));
        try {
          await synced(devices);
          for (const step of ops) await apply(step, devices, threadId);
          for (const d of devices) if (!d.provider.shouldConnect) d.provider.connect();
          await converged(server, threadId, devices);
        } finally {
          for (const d of devices) d.destroy();
        }
      }),
      { numRuns: 15, endOnFailure: true },
    );
  });

  async function apply(step: Op, devices: Device[], threadId: string): Promise<void> {
    const log = async () => [...(await server.services.engine.load(threadId)).items.keys()];
    switch (step.kind) {
      case "type": {
        const d = devices[step.device];
        const id = pick(d.view().items.map((i) => i.id), step.item);
        if (!id) return;
        const text = d.text(id);
        text.insert(step.at % (text.length + 1), step.text);
        return;
      }
      case "erase": {
        const d = devices[step.device];
        const id = pick(d.view().items.map((i) => i.id), step.item);
        if (!id) return;
        const text = d.text(id);
        if (text.length === 0) return;
        const at = step.at % text.length;
        text.delete(at, Math.min(step.length, text.length - at));
        return;
      }
      case "move": {
        const d = devices[step.device];
        const items = d.view().items;
        const moved = pick(items, step.item);
        if (!moved) return;
        const rest = items.filter((i) => i.id !== moved.id);
        const index = step.after % (rest.length + 1) - 1;
        const before = index >= 0 ? rest[index].position : null;
        const after = rest[index + 1]?.position ?? null;
        const key = before !== null && after !== null && before >= after ? generateKeyBetween(before, null) : generateKeyBetween(before, after);
        d.item(moved.id).set("position", key);
        return;
      }
      case "toggle": {
        const p = devices[step.device].provider;
        if (p.shouldConnect) p.disconnect();
        else p.connect();
        return;
      }
      case "apiEdit": {
        const id = pick(await log(), step.item);
        if (id) await exec(server, threadId, { type: "queue.edit", queueItemId: id, text: step.text });
        return;
      }
      case "apiAdd":
        await addItem(server, threadId, step.text);
        return;
      case "apiRemove": {
        const id = pick(await log(), step.item);
        if (id) await exec(server, threadId, { type: "queue.remove", queueItemId: id });
        return;
      }
      case "pause":
        await exec(server, threadId, { type: "queue.pause" });
        return;
    }
  }
});
