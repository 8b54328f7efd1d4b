import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrivatePostgres } from "./infra.js";
import { runScenario } from "./run.js";

/**
 * The short, fixed-seed chaos run inside `npm test` (`npm run chaos` runs every nemesis
 * over many seeds). Three instances on a PostgreSQL cluster and a Redis of the run's own,
 * an agent runtime on the SDK, four clients on the API and typing into documents; the
 * nemesis SIGKILLs an instance and kills and restarts Redis in turn. Seed 13 types into an
 * item during the Redis outage and edits it through the API before Redis is back (a replica
 * catching up once committed its older document text over that edit). Faults are real
 * (signals, a killed redis-server); the random choices are seeded.
 */
describe("chaos: SIGKILL an instance and restart Redis under three instances (fixed seed)", () => {
  let postgres: PrivatePostgres;
  beforeAll(async () => {
    postgres = await PrivatePostgres.start();
  });
  afterAll(async () => {
    await postgres?.close();
  });

  it("every check holds: total queue, no double run, order, one in flight, the last text, projections and documents", { timeout: 420_000 }, async () => {
    const result = await runScenario({ nemesis: "kill-and-restart-redis", seed: 13, workloadMs: 8_000, threads: 2, clients: 4, postgres, minStrikes: 2, typing: true });
    const report = result.violations.map((v) => `${v.check} ${v.queueItemId ?? v.threadId ?? ""}: ${v.message}\n  ${v.history.join("\n  ")}`);
    expect(report, `seed ${result.seed}, faults: ${result.faults.join(", ")}`).toEqual([]);
    // The run did what it says: operations acknowledged, both faults struck.
    expect(result.acknowledged).toBeGreaterThan(10);
    expect(result.faults).toEqual(expect.arrayContaining([expect.stringMatching(/^SIGKILL i\d$/), "SIGKILL Redis"]));
  });
});
