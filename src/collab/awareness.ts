import { equalityDeep } from "lib0/function";
import * as time from "lib0/time";
import type { Awareness } from "y-protocols/awareness";
import type { AwarenessEntry } from "./protocol.js";

/**
 * Applies awareness entries already decoded (by protocol.ts's parser, which also checked
 * and filtered them) to the document's Awareness: y-protocols' `applyAwarenessUpdate`,
 * which only takes bytes, on entries, so an update is decoded once rather than parsed,
 * encoded again and parsed a second time. The rules are y-protocols': a newer clock wins,
 * a null state at the same clock removes, the 'change' and 'update' events fire as there.
 */
export function applyAwareness(awareness: Awareness, entries: readonly AwarenessEntry[], origin: unknown): void {
  const timestamp = time.getUnixTime();
  const added: number[] = [];
  const updated: number[] = [];
  const changed: number[] = [];
  const removed: number[] = [];
  for (const { clientId, state, clock: sent } of entries) {
    let clock = sent;
    const meta = awareness.meta.get(clientId);
    const previous = awareness.states.get(clientId);
    const current = meta === undefined ? 0 : meta.clock;
    if (!(current < clock || (current === clock && state === null && awareness.states.has(clientId)))) continue;
    if (state === null) {
      // Never let another client remove this instance's own state: announce it again instead.
      if (clientId === awareness.clientID && awareness.getLocalState() != null) clock++;
      else awareness.states.delete(clientId);
    } else awareness.states.set(clientId, state as Record<string, unknown>);
    awareness.meta.set(clientId, { clock, lastUpdated: timestamp });
    if (meta === undefined && state !== null) added.push(clientId);
    else if (meta !== undefined && state === null) removed.push(clientId);
    else if (state !== null) {
      if (!equalityDeep(state, previous)) changed.push(clientId);
      updated.push(clientId);
    }
  }
  if (added.length > 0 || changed.length > 0 || removed.length > 0) awareness.emit("change", [{ added, updated: changed, removed }, origin]);
  if (added.length > 0 || updated.length > 0 || removed.length > 0) awareness.emit("update", [{ added, updated, removed }, origin]);
}
