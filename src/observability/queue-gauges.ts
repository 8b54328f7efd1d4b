import { Gauge, type Registry } from "prom-client";
import type { SqlClient } from "../store/sql.js";

const STATUSES = ["pending", "sending", "failed"] as const;

/**
 * Queue depth and items by status, read from the projection when /metrics is scraped: the
 * database is the truth for every instance, so each reports the same totals (use max, not
 * sum, across instances). A scrape while the database is down keeps the last values.
 */
export function registerQueueGauges(registry: Registry, sql: SqlClient): void {
  let last: Record<string, number> = {};
  let inFlight: Promise<void> | null = null;
  const refresh = () =>
    (inFlight ??= sql
      .query<{ status: string; n: number }>(`select status, count(*)::int as n from "QueueItem" group by status`)
      .then((rows) => {
        last = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      })
      .catch(() => {})
      .finally(() => {
        inFlight = null;
      }));

  new Gauge({
    name: "turnqueue_queue_items",
    help: "Queue items by status (pending, sending, failed), all threads",
    labelNames: ["status"],
    registers: [registry],
    async collect() {
      await refresh();
      for (const status of STATUSES) this.set({ status }, last[status] ?? 0);
    },
  });
  new Gauge({
    name: "turnqueue_queue_depth",
    help: "Items waiting to be sent (pending or being sent), all threads",
    registers: [registry],
    async collect() {
      await refresh();
      this.set((last.pending ?? 0) + (last.sending ?? 0));
    },
  });
}
