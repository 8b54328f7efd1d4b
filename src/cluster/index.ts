import type { Config } from "../services.js";
import type { Database } from "../store/database.js";
import { InProcessBus, type Bus } from "./bus.js";
import { InProcessLease, type Lease } from "./lease.js";

/** The embedded default is one process: an in-process bus and lease. */
export async function createCluster(_config: Config, _db: Database): Promise<{ bus: Bus; lease: Lease }> {
  return { bus: new InProcessBus(), lease: new InProcessLease() };
}
