import { InvalidArgumentError } from "commander";
import { ConfigError, settings, withoutPassword } from "../config.js";
import { ExitCode, StartupError } from "../exit-codes.js";

/**
 * How `turnqueue` ends on an error: one message on stderr and an exit code saying why (see
 * ExitCode). A failure the user can fix reads as what to do, without a stack trace; only
 * the unforeseen keeps its stack. No secret or token value ever reaches the message.
 */
export function reportFailure(error: unknown, context: { argv?: string[]; env?: NodeJS.ProcessEnv } = {}): never {
  const { code, text } = describe(error);
  process.stderr.write(`turnqueue: ${redact(text, secretsIn(context.argv ?? process.argv, context.env ?? process.env))}\n`);
  process.exit(code);
}

function describe(error: unknown): { code: number; text: string } {
  // First: commander's InvalidArgumentError carries an exitCode of its own (1), but is a bad setting.
  if (error instanceof ConfigError || error instanceof InvalidArgumentError) return { code: ExitCode.badSetting, text: (error as Error).message };
  // A start-up failure, or an operator command's (CommandFailure): one line, its own exit code.
  if (error instanceof StartupError || hasExitCode(error)) return { code: error.exitCode, text: error.message };
  return { code: ExitCode.internal, text: (error as Error)?.stack ?? String(error) };
}

const hasExitCode = (error: unknown): error is Error & { exitCode: number } =>
  error instanceof Error && typeof (error as { exitCode?: unknown }).exitCode === "number";

/** Values that must never be printed: the secret, and any token, from flags or environment. */
function secretsIn(argv: string[], env: NodeJS.ProcessEnv): string[] {
  const values: string[] = [];
  const sensitiveFlags = new Set(["--secret", "--token"]);
  argv.forEach((arg, i) => {
    const [flag, inline] = arg.split(/=(.*)/s, 2);
    if (sensitiveFlags.has(flag!)) values.push(inline ?? argv[i + 1] ?? "");
  });
  const fromEnv = env[settings.secret.env];
  if (fromEnv) values.push(fromEnv);
  return values.filter((v) => v.length >= 4);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = withoutPassword(text);
  for (const secret of secrets) out = out.split(secret).join("[redacted]");
  // Anything shaped like a JWT (header.payload.signature) is a token.
  return out.replace(/\beyJ[\w-]+\.[\w-]+\.[\w-]+/g, "[token]");
}
