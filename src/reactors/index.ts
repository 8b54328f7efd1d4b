import type { Closable } from "../lifecycle.js";
import { startDrainReactor, type DrainDeps } from "./drain.js";

/** Everything that reacts to committed events by issuing commands. */
export async function startReactors(deps: DrainDeps): Promise<Closable> {
  const drain = await startDrainReactor(deps);
  return { close: () => drain.close() };
}
