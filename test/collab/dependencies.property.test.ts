import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { missingDependencies } from "../../src/collab/dependencies.js";

/**
 * `missingDependencies` predicts, from clocks alone, whether Yjs would leave part of an
 * update pending. Checked against Yjs itself: random edits by three replicas that sync now
 * and then, a receiving document holding a random subset of their updates, and a candidate
 * update made of another random subset (merged, as a sync answer would be).
 */

type Op = { replica: number; kind: "insert" | "delete" | "set" | "remove" | "sync"; at: number; text: string };

const op = fc.record({
  replica: fc.integer({ min: 0, max: 2 }),
  kind: fc.constantFrom("insert", "delete", "set", "remove", "sync") as fc.Arbitrary<Op["kind"]>,
  at: fc.nat(40),
  text: fc.string({ minLength: 1, maxLength: 4 }),
});

/** Every incremental update the replicas produced, in the order they made them. */
function history(ops: Op[]): Uint8Array[] {
  const replicas = [new Y.Doc(), new Y.Doc(), new Y.Doc()];
  const updates: Uint8Array[] = [];
  replicas.forEach((doc) => doc.on("update", (u: Uint8Array, origin: unknown) => origin !== "sync" && updates.push(u)));
  for (const { replica, kind, at, text } of ops) {
    const doc = replicas[replica];
    const ytext = doc.getText("t");
    const map = doc.getMap("m");
    switch (kind) {
      case "insert":
        ytext.insert(at % (ytext.length + 1), text);
        break;
      case "delete":
        if (ytext.length > 0) ytext.delete(at % ytext.length, 1 + (at % 3));
        break;
      case "set":
        map.set(text, at);
        break;
      case "remove":
        map.delete(text);
        break;
      case "sync": {
        const other = replicas[(replica + 1 + (at % 2)) % 3];
        Y.applyUpdate(doc, Y.encodeStateAsUpdate(other, Y.encodeStateVector(doc)), "sync");
        break;
      }
    }
  }
  return updates;
}

const leavesPending = (doc: Y.Doc) => doc.store.pendingStructs !== null || doc.store.pendingDs !== null;

describe("missingDependencies agrees with Yjs", () => {
  it("on random histories, receivers and candidate updates", () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), fc.array(fc.boolean(), { maxLength: 30 }), fc.array(fc.boolean(), { minLength: 1, maxLength: 30 }), (ops, held, sent) => {
        const updates = history(ops);
        const receiver = new Y.Doc();
        updates.forEach((u, i) => held[i] && Y.applyUpdate(receiver, u));
        // The server's document never holds pending parts itself (that is the point).
        fc.pre(!leavesPending(receiver));
        const chosen = updates.filter((_, i) => sent[i % sent.length]);
        fc.pre(chosen.length > 0);
        const candidate = Y.mergeUpdates(chosen);

        const predicted = missingDependencies(Y.decodeUpdate(candidate), (c) => Y.getState(receiver.store, c));
        const copy = new Y.Doc();
        Y.applyUpdate(copy, Y.encodeStateAsUpdate(receiver));
        Y.applyUpdate(copy, candidate);
        expect(predicted !== null).toBe(leavesPending(copy));
      }),
      { seed: 8, numRuns: 200 },
    );
  });
});
