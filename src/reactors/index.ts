import type { Closable, Services } from "../services.js";
import { startDrainReactor } from "./drain.js";

/** Everything that reacts to committed events by issuing commands. */
export async function startReactors(services: Services): Promise<Closable> {
  const drain = await startDrainReactor(services);
  return { close: () => drain.close() };
}
