/**
 * `npm run chaos`: every nemesis alone and mixed, over many seeds, then the table
 * (nemesis, operations, acknowledged, violations). A violation prints its seed and the
 * smallest part of the history that shows it. Exit code 1 when any run found one.
 *
 *   npm run chaos                      # every nemesis, CHAOS_SEEDS seeds each (default 3)
 *   npm run chaos -- restart-redis 7   # one nemesis, one seed
 */
import { PrivatePostgres } from "./infra.js";
import { NEMESES } from "./nemesis.js";
import { runScenario, type ScenarioResult } from "./run.js";

const [only, seedArg] = process.argv.slice(2);
const names = (only ? [only] : Object.keys(NEMESES).filter((n) => n !== "none")) as (keyof typeof NEMESES)[];
for (const n of names) if (!(n in NEMESES)) throw new Error(`unknown nemesis ${n}; one of ${Object.keys(NEMESES).join(", ")}`);
const seeds = seedArg ? [Number(seedArg)] : Array.from({ length: Number(process.env.CHAOS_SEEDS ?? 3) }, (_, i) => 1 + i);
const workloadMs = Number(process.env.CHAOS_WORKLOAD_MS ?? 20_000);

const postgres = await PrivatePostgres.start();
const results: ScenarioResult[] = [];
try {
  for (const nemesis of names) {
    for (const seed of seeds) {
      const result = await runScenario({
        nemesis, seed, workloadMs, threads: Number(process.env.CHAOS_THREADS ?? 4), clients: Number(process.env.CHAOS_CLIENTS ?? 6),
        typing: process.env.CHAOS_TYPING !== "0", postgres, log: (l) => console.error(l),
      });
      results.push(result);
      if (process.env.CHAOS_DEBUG) for (const [name, text] of Object.entries(result.logs ?? {})) console.log(`--- ${name}\n${text}`);
      if (process.env.CHAOS_DEBUG) for (const o of result.debug ?? []) console.log(`${o.client}@${o.instance} ${o.type} ${o.outcome} ${o.completeAt - o.invokeAt} ms: ${o.error}`);
      for (const v of result.violations) {
        console.log(`\nVIOLATION ${v.check} (nemesis ${nemesis}, seed ${seed})${v.threadId ? ` thread ${v.threadId}` : ""}${v.queueItemId ? ` item ${v.queueItemId}` : ""}: ${v.message}`);
        for (const line of v.history) console.log(`  ${line}`);
      }
    }
  }
} finally {
  await postgres.close();
}

const rows = results.map((r) => [r.nemesis, String(r.seed), String(r.operations), String(r.acknowledged), String(r.typed), String(r.unknown), String(r.violations.length)]);
const header = ["nemesis", "seed", "operations", "acknowledged", "typed", "unknown", "violations"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(`\n${line(header)}`);
for (const r of rows) console.log(line(r));
process.exitCode = results.some((r) => r.violations.length > 0) ? 1 : 0;
if (process.env.CHAOS_DEBUG) for (const r of results) console.log(JSON.stringify(r.faults));
