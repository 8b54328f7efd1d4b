import { Command, Option } from "commander";
import { ExitCode } from "../exit-codes.js";
import { ConfigError, loadConfig, settings, type SettingName } from "../config.js";
import { CommandFailure } from "./remote.js";

/** The settings that say which database: the same flags and variables as `serve`. */
const DATABASE_SETTINGS: SettingName[] = ["dataDir", "databaseUrl"];

const withDatabase = (command: Command) => {
  for (const name of DATABASE_SETTINGS) command.addOption(new Option(settings[name].flag, `${settings[name].help} [env ${settings[name].env}]`));
  return command.option("--json", "print JSON");
};

/** A database that cannot be opened or changed is one line for the operator, not a stack. */
const oneLine = (error: unknown): never => {
  if (error instanceof ConfigError || error instanceof CommandFailure) throw error;
  throw new CommandFailure((error as Error).message ?? String(error), ExitCode.unavailable);
};

async function openConfigured(options: Record<string, unknown>, onMigrated?: (names: string[]) => void) {
  const config = await loadConfig({ flags: { dataDir: options.dataDir as string | undefined, databaseUrl: options.databaseUrl as string | undefined } });
  // Loaded here so `--help` and the remote commands answer without the database stack.
  const { openDatabase } = await import("../store/database.js");
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 }, { onMigrated }).catch(oneLine);
  return { config, db };
}

const where = (config: { databaseUrl: string | null; dataDir: string }) => (config.databaseUrl ? "PostgreSQL" : `PGlite in ${config.dataDir}`);

/**
 * `turnqueue migrate` and `turnqueue rebuild-projections`: run against the database itself
 * (the embedded one only while no server has it open; PostgreSQL at any time).
 */
export function databaseCommands(): Command[] {
  const migrate = withDatabase(
    new Command("migrate").description("apply pending database migrations (the server also does at start)"),
  ).action(async (options: Record<string, unknown>) => {
    let applied: string[] = [];
    const { config, db } = await openConfigured(options, (names) => (applied = names));
    await db.close();
    process.stdout.write(
      options.json
        ? `${JSON.stringify({ applied })}\n`
        : applied.length > 0
          ? `applied ${applied.length} migration(s) to ${where(config)}: ${applied.join(", ")}\n`
          : `${where(config)} is up to date\n`,
    );
  });

  const rebuild = withDatabase(
    new Command("rebuild-projections").description("rebuild every projection table from the event log, in one transaction"),
  ).action(async (options: Record<string, unknown>) => {
    const { config, db } = await openConfigured(options);
    try {
      const { rebuildProjections } = await import("../store/rebuild.js");
      const result = await rebuildProjections(db).catch(oneLine);
      process.stdout.write(
        options.json ? `${JSON.stringify(result)}\n` : `rebuilt the projections of ${result.threads} thread(s) from ${result.events} event(s) in ${where(config)}\n`,
      );
    } finally {
      await db.close();
    }
  });
  return [migrate, rebuild];
}
