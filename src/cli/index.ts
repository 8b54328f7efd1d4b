import type { Command } from "commander";
import { databaseCommands } from "./database.js";
import { eventsCommand } from "./events.js";
import { mcpCommand } from "./mcp.js";
import { queueCommand } from "./queue.js";
import { threadsCommand } from "./threads.js";
import { packageVersion } from "../version.js";

export { CommandFailure } from "./remote.js";

/**
 * The operator's commands: over a running server (threads, queue, events; the SDK's own
 * client, a token from --token or TURNQUEUE_TOKEN) and against the database (migrate,
 * rebuild-projections); plus --version.
 */
export function registerOperatorCommands(program: Command): void {
  program.version(packageVersion(), "-V, --version", "print the version");
  for (const command of [threadsCommand(), queueCommand(), eventsCommand(), mcpCommand(), ...databaseCommands()]) program.addCommand(command);
}
