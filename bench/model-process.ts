/**
 * The scripted model server of bench/agents.ts, in a process of its own: the time a request
 * arrives is read on an event loop that runs nothing else, so work Turnqueue does in the
 * bench's process (database, reports) cannot delay the clock that measures it. Sends its
 * URL, then each request's text and arrival time, to the parent over IPC.
 */
import { startModelServer } from "../test/support/model-server.js";

const model = await startModelServer();
const seen = new Set<unknown>();
const relay = () => {
  for (const request of model.requests) {
    if (seen.has(request)) continue;
    seen.add(request);
    process.send!({ kind: "request", userText: request.userText, at: request.at });
  }
};
// Every recorded request resolves the waiter that matches anything: relayed as it arrives.
const watch = (): void => void model.nextRequest((r) => !seen.has(r)).then(() => (relay(), watch()));
watch();
process.send!({ kind: "ready", url: model.url });
process.on("disconnect", () => void model.close().then(() => process.exit(0)));
