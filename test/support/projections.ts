import type { Database } from "../../src/store/database.js";

/**
 * Every projection row, in an order decided here (never by database collation): what the
 * rebuild test and the chaos checker compare before and after `rebuildProjections`.
 */
export async function projectionRows(db: Pick<Database, "prisma">) {
  const byKey = <T>(rows: T[], key: (r: T) => string) => rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return {
    threads: byKey(await db.prisma.thread.findMany(), (r) => r.id),
    items: byKey(await db.prisma.queueItem.findMany(), (r) => r.id),
    turns: byKey(await db.prisma.turn.findMany(), (r) => `${r.threadId}\u0000${r.turnId}`),
    messages: byKey(await db.prisma.message.findMany(), (r) => `${r.threadId}\u0000${r.messageId}`),
  };
}
