import { TRPCClientError } from "@trpc/client";
import type { ConnectionChange } from "../../client/transport.js";
import { withoutPassword } from "../config.js";
import { ExitCode } from "../exit-codes.js";

/**
 * What `turnqueue agent` says about its connection: "connected" only once the server
 * accepted the token and streams dispatches; an unreachable server as such, on every retry
 * (the client backs off by itself); a refused token ends the process, since no retry can
 * fix it.
 */
export function agentConnectionReporter(
  url: string,
  /** What runs, for the "connected" line: "echo agent", or another runtime's name. */
  runtime: string,
  out: { write(line: string): void } = { write: (l) => process.stderr.write(l) },
) {
  const where = withoutPassword(url);
  let connected = false;
  let failures = 0;
  let lastReason = "";
  return {
    onConnection(change: ConnectionChange) {
      switch (change.state) {
        case "open":
          return;
        case "ready":
          if (connected) return;
          connected = true;
          failures = 0;
          return process.stdout.write(`${runtime} connected to ${where}; Ctrl-C to stop\n`);
        case "down":
          // A failed attempt reports an error then a close: one line per attempt.
          if (change.reason.startsWith("closed") && !connected && lastReason !== "") return void (lastReason = "");
          lastReason = change.reason;
          if (connected) {
            connected = false;
            return out.write(`turnqueue agent: lost the connection to ${where} (${change.reason}); reconnecting with backoff\n`);
          }
          failures++;
          return out.write(`turnqueue agent: cannot reach ${where} (${change.reason}); retrying with backoff (attempt ${failures})\n`);
      }
    },
    onError(error: unknown) {
      const code = error instanceof TRPCClientError ? (error.data as { code?: string } | undefined)?.code : undefined;
      if (code === "UNAUTHORIZED" || code === "FORBIDDEN") {
        out.write(
          `turnqueue agent: the server refused the token (${code}): ` +
            `issue an agent token signed with the server's secret: turnqueue token --workspace <id> --role agent\n`,
        );
        process.exit(ExitCode.tokenRefused);
      }
      out.write(`turnqueue agent: ${(error as Error)?.message ?? String(error)}\n`);
    },
  };
}
