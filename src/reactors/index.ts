import type { Closable } from "../lifecycle.js";
import type { Services } from "../server.js";
import { startDrainReactor } from "./drain.js";

/** Everything that reacts to committed events by issuing commands. */
export async function startReactors(services: Services): Promise<Closable> {
  const drain = await startDrainReactor(services);
  return { close: () => drain.close() };
}
