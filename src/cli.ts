import { Command, InvalidArgumentError, Option } from "commander";
import { createAuth } from "./api/auth.js";
import { ConfigError, loadConfig, settings, type RawSettings, type SettingName } from "./config.js";
import { Id, Role } from "./domain/index.js";

/** The workspace `serve` prints a token for, so a newcomer can use the server at once. */
const LOCAL_WORKSPACE = "local";

const program = new Command("turnqueue")
  .description("Durable, collaborative queue of user turns for AI coding agents")
  .showHelpAfterError();

const withSettings = (command: Command, names: readonly SettingName[]) => {
  for (const name of names) command.addOption(new Option(settings[name].flag, `${settings[name].help} [env ${settings[name].env}]`));
  return command;
};

/** Commander camel-cases each flag to exactly its setting name (`--data-dir` → dataDir). */
const flagsOf = (options: Record<string, unknown>): RawSettings => options as RawSettings;

withSettings(
  program.command("serve").description("serve the API, the queue documents and the web page on one port"),
  Object.keys(settings) as SettingName[],
).action(async (options: Record<string, unknown>) => {
  const config = await loadConfig({ flags: flagsOf(options) });
  // Loaded here so `token` and `--help` answer at once, without the database stack.
  const { startTurnqueue } = await import("./server.js");
  const app = await startTurnqueue(config);
  const token = await app.services.auth.issue({ sub: "local", workspaceId: LOCAL_WORKSPACE, role: "user" }, { expiresIn: "30d" });
  process.stdout.write(
    [
      `Turnqueue is serving ${app.url}`,
      `  database: ${config.databaseUrl ? "PostgreSQL" : `PGlite in ${config.dataDir}`}`,
      `  user token (workspace "${LOCAL_WORKSPACE}", 30 days): ${token}`,
      `  web board: ${app.url}/#token=${token}`,
      "",
    ].join("\n"),
  );

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      app.services.logger.warn({ signal }, "second signal: exiting without finishing");
      process.exit(1);
    }
    stopping = true;
    app.services.logger.info({ signal }, "shutting down: finishing commands in flight");
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.services.logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
});

const parseWith =
  <T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, what: string) =>
  (value: string): T => {
    const parsed = schema.safeParse(value);
    if (!parsed.success) throw new InvalidArgumentError(`not a valid ${what}.`);
    return parsed.data;
  };

withSettings(
  program
    .command("token")
    .description("print a token signed with this server's secret")
    .requiredOption("--workspace <id>", "workspace the token may see", parseWith(Id, "workspace id (1–128 characters)"))
    .addOption(new Option("--role <role>", "what the token may do").choices(Role.options).makeOptionMandatory())
    .option("--sub <subject>", "who the token names (default: the role)", parseWith(Id, "subject (1–128 characters)"))
    .option("--expires <period>", "lifetime such as 30d, 12h or 90m", "30d"),
  ["dataDir", "secret"],
).action(async (options: { workspace: string; role: Role; sub?: string; expires: string } & Record<string, unknown>) => {
  if (!/^\d+\s*(s|m|h|d|w|y)$/.test(options.expires)) {
    throw new InvalidArgumentError(`--expires must look like 30d, 12h, 90m or 3600s (got "${options.expires}")`);
  }
  const config = await loadConfig({ flags: { dataDir: options.dataDir as string | undefined, secret: options.secret as string | undefined } });
  const token = await createAuth(config.secret).issue(
    { sub: options.sub ?? options.role, workspaceId: options.workspace, role: options.role },
    { expiresIn: options.expires },
  );
  process.stdout.write(`${token}\n`);
});

try {
  await program.parseAsync();
} catch (error) {
  // Bad settings are the user's to fix: say what, without a stack trace.
  const known = error instanceof ConfigError || error instanceof InvalidArgumentError;
  process.stderr.write(`turnqueue: ${known ? (error as Error).message : (error as Error).stack ?? String(error)}\n`);
  process.exit(known ? 2 : 1);
}
