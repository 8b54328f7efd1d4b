import type { TRPCLink, TRPCWebSocketClient } from "@trpc/client";
import { observable } from "@trpc/server/observable";
import type { AppRouter } from "./router-types.js";

/**
 * tRPC's WebSocket client holds every call for a `setTimeout(0)` before it writes it, so that
 * the calls of one tick share a message. Node clamps that timeout to 1 ms and runs it only in
 * the next loop's timers phase: every call over the socket, a `queue.add`, an agent's report
 * of a turn's end, waited a millisecond or more before leaving (measured at the door: a
 * `queue.add` reached the agent's handler in 4.4 ms with the wait, 2.4 ms without).
 *
 * This link writes the calls of a tick at the end of the same loop iteration (`setImmediate`:
 * still one message for the calls of a tick, without the clamp), with the client's own steps:
 * its outgoing requests become pending on the open socket, then one message carries them.
 * When the timeout fires later, nothing is outgoing and it does nothing. It reaches into the
 * client's internals; where they are not what this expects (another tRPC version), it does
 * nothing and the client sends at its own pace (test/client/socket-calls.test.ts notices).
 */
export function sendNowLink(client: TRPCWebSocketClient, socket: TRPCLink<AppRouter>): TRPCLink<AppRouter> {
  if (!sendsAtOnce(client)) return socket;
  const internals = client as unknown as Internals;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    // Read at each flush: the client replaces its connection when it reconnects.
    const { activeConnection, requestManager } = internals;
    if (!activeConnection.isOpen() || !requestManager.hasOutgoingRequests()) return;
    const requests = requestManager.flush(activeConnection.ws);
    internals.send(requests.map((request) => request.message));
  };
  return (runtime) => {
    const link = socket(runtime);
    return (options) =>
      observable((observer) => {
        const subscription = link(options).subscribe(observer);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
        return () => subscription.unsubscribe();
      });
  };
}

/** The parts of tRPC's WebSocket client this link uses (not its public API). */
interface Internals {
  activeConnection: { isOpen(): boolean; ws: unknown };
  requestManager: { hasOutgoingRequests(): boolean; flush(ws: unknown): { message: unknown }[] };
  send(messages: unknown[]): void;
}

/** Whether `sendNowLink` can write this client's calls at once (false: tRPC's own pace). */
function sendsAtOnce(client: TRPCWebSocketClient): boolean {
  const c = client as unknown as Partial<Internals>;
  return (
    typeof c.send === "function" &&
    typeof c.activeConnection?.isOpen === "function" &&
    typeof c.requestManager?.hasOutgoingRequests === "function" &&
    typeof c.requestManager.flush === "function"
  );
}
