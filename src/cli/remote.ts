import { ExitCode } from "../exit-codes.js";
import { TRPCClientError } from "@trpc/client";
import { Command, Option } from "commander";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import { failureLine, type FailureData } from "../mcp/failure-line.js";

/** What every command over a running server takes: where it is, who we are, how to print. */
export interface RemoteOptions {
  url: string;
  token?: string;
  json?: boolean;
}

/** The one-line failure of an operator command, with the exit code it ends with. */
export class CommandFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Exit codes of the commands over a running server, by what the operator must do next:
 * fix the input, the token, the id, the queue's state, or wait for the server.
 */
const exitCodeOf: Record<string, number> = {
  BAD_REQUEST: ExitCode.badSetting,
  PARSE_ERROR: ExitCode.badSetting,
  UNAUTHORIZED: ExitCode.tokenRefused,
  FORBIDDEN: ExitCode.tokenRefused,
  NOT_FOUND: ExitCode.notFound,
  CONFLICT: ExitCode.refused,
  PRECONDITION_FAILED: ExitCode.refused,
  SERVICE_UNAVAILABLE: ExitCode.unavailable,
  TIMEOUT: ExitCode.unavailable,
};

/** `--url`, `--token` (or their environment variables) and `--json` on a command. */
export function withRemote(command: Command): Command {
  return command
    .addOption(new Option("--url <url>", "the server").env("TURNQUEUE_URL").default("http://127.0.0.1:4780"))
    .addOption(new Option("--token <token>", "a user token: turnqueue token --workspace W --role user").env("TURNQUEUE_TOKEN"))
    .option("--json", "print JSON (one document, or one line per event)");
}

/** A tRPC or network failure as one line an operator can act on (never the token). */
export function describeFailure(error: unknown, url: string): CommandFailure {
  if (error instanceof CommandFailure) return error;
  if (error instanceof TRPCClientError) {
    const data = error.data as Omit<FailureData, "message"> | undefined;
    if (data?.code) return new CommandFailure(failureLine({ ...data, message: error.message }), exitCodeOf[data.code] ?? ExitCode.internal);
    return new CommandFailure(`cannot reach ${url}: ${(error.cause as Error | undefined)?.message ?? error.message}`, ExitCode.unavailable);
  }
  return new CommandFailure((error as Error).message ?? String(error), ExitCode.internal);
}

/**
 * Runs a command with the SDK's client on the server named by the options; the client is
 * closed afterwards, and any failure becomes a CommandFailure.
 */
export async function withClient<T>(options: RemoteOptions, work: (client: TurnqueueClient) => Promise<T>): Promise<T> {
  if (!options.token) throw new CommandFailure("a token is required: --token or TURNQUEUE_TOKEN (turnqueue token --workspace W --role user)", ExitCode.tokenRefused);
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new CommandFailure(`--url must be an http(s) URL (got "${options.url}")`, ExitCode.badSetting);
  }
  // One command, one or two calls: a socket would cost more than it saves.
  const client = createTurnqueueClient({ url: url.href.replace(/\/$/, ""), token: options.token, calls: "http" });
  try {
    return await work(client);
  } catch (error) {
    throw describeFailure(error, options.url);
  } finally {
    await client.close();
  }
}

/** Prints a result: JSON with --json, else the human lines. */
export function print(options: Pick<RemoteOptions, "json">, value: unknown, human: () => string[]): void {
  process.stdout.write(options.json ? `${JSON.stringify(value)}\n` : human().map((line) => `${line}\n`).join(""));
}
