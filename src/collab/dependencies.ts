import * as Y from "yjs";

export type DecodedUpdate = ReturnType<typeof Y.decodeUpdate>;

/**
 * What of an update a document could not integrate, or null when all of it applies.
 *
 * Yjs keeps the structs and deletions of an update whose dependencies it lacks (an earlier
 * clock of the same client, an origin, a parent) as "pending", in memory, until they
 * arrive, and sends them along in every sync answer. A y-websocket client only sends what
 * builds on the server's own state, so on a client connection such an update is refused
 * before it touches the document. This replays Yjs's integration order on clocks alone:
 * every client's structs in clock order, each once its own client's earlier clocks and
 * the structs it names (origin, right origin, parent) are integrated; deletions once
 * everything they delete is.
 */
export function missingDependencies(update: DecodedUpdate, stateOf: (client: number) => number): string | null {
  const reached = new Map<number, number>();
  const reach = (client: number) => reached.get(client) ?? stateOf(client);
  const byClient = new Map<number, (Y.Item | Y.GC)[]>();
  for (const struct of update.structs) {
    // A Skip is a hole the sender left: it integrates nothing.
    if (struct instanceof Y.Skip) continue;
    const list = byClient.get(struct.id.client) ?? [];
    list.push(struct as Y.Item | Y.GC);
    byClient.set(struct.id.client, list);
  }
  for (const list of byClient.values()) list.sort((a, b) => a.id.clock - b.id.clock);

  const next = new Map<number, number>([...byClient.keys()].map((c) => [c, 0]));
  /** Clients stuck on a struct that names another client's clock they do not yet reach. */
  const waiting = new Map<number, Set<number>>();
  const work = [...byClient.keys()];
  while (work.length > 0) {
    const client = work.pop()!;
    const list = byClient.get(client)!;
    let i = next.get(client)!;
    let advanced = false;
    for (; i < list.length; i++) {
      const struct = list[i];
      // A gap in the client's own clocks: only that client could fill it, and it did not.
      if (struct.id.clock > reach(client)) break;
      const blocker = struct instanceof Y.Item ? unmet(struct, reach) : null;
      if (blocker !== null) {
        if (blocker === client) break;
        const set = waiting.get(blocker) ?? new Set<number>();
        set.add(client);
        waiting.set(blocker, set);
        break;
      }
      reached.set(client, Math.max(reach(client), struct.id.clock + struct.length));
      advanced = true;
    }
    next.set(client, i);
    if (advanced) {
      for (const waiter of waiting.get(client) ?? []) work.push(waiter);
      waiting.delete(client);
    }
  }
  for (const [client, list] of byClient) {
    const i = next.get(client)!;
    if (i < list.length) return `client ${client} from clock ${list[i].id.clock}`;
  }
  for (const [client, deletions] of update.ds.clients) {
    for (const { clock, len } of deletions) {
      if (len > 0 && clock + len > reach(client)) return `a deletion of client ${client} up to clock ${clock + len}`;
    }
  }
  return null;
}

/** The client of the first struct an item names that is not integrated yet, or null. */
function unmet(item: Y.Item, reach: (client: number) => number): number | null {
  for (const id of [item.origin, item.rightOrigin, item.parent instanceof Y.ID ? item.parent : null]) {
    if (id && id.clock >= reach(id.client)) return id.client;
  }
  return null;
}
