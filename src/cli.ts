import { existsSync } from "node:fs";
import path from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import type { Agent } from "../client/agent.js";
import { APPROVE_POLICIES, type ApprovePolicy } from "../client/agents/approval.js";
import { createAuth } from "./auth/tokens.js";
import { stopWithNpmParent } from "./startup/parent-watch.js";
import { registerOperatorCommands } from "./cli/index.js";
import { reportFailure } from "./startup/report-failure.js";
import { loadConfig, settings, type RawSettings, type SettingName } from "./config.js";
import { Id, Role } from "./domain/index.js";
import type { Turnqueue } from "./server.js";

/** A signal this soon after the first is the same one delivered twice, not a person insisting. */
const DUPLICATE_SIGNAL_MS = 1_000;

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
)
  .option("--with-echo-agent", "also run the echo agent runtime on the local workspace, to watch queues drain")
  .action(async ({ withEchoAgent, ...options }: { withEchoAgent?: boolean } & Record<string, unknown>) => {
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
    const echoAgent = withEchoAgent ? await startLocalEchoAgent(app) : null;

    let stopping = false;
    let firstSignalAt = 0;
    const stop = (signal: NodeJS.Signals) => {
      // The same Ctrl-C can arrive twice at once (the terminal signals the group, npm forwards
      // it again): only a second signal a person sent later forces the exit.
      if (stopping && Date.now() - firstSignalAt < DUPLICATE_SIGNAL_MS) return;
      if (stopping) {
        app.services.logger.warn({ signal }, "second signal: exiting without finishing");
        process.exit(1);
      }
      stopping = true;
      firstSignalAt = Date.now();
      app.services.logger.info({ signal }, "shutting down: finishing commands in flight");
      Promise.resolve(echoAgent?.close())
        .then(() => app.close())
        .then(
          () => process.exit(0),
          (err: unknown) => {
            app.services.logger.error({ err }, "shutdown failed");
            process.exit(1);
          },
        );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
    stopWithNpmParent(() => void (stopping || stop("SIGTERM")));
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
    .option("--expires <period>", "lifetime such as 30d, 12h or 90m", "30d")
    .option("--create-secret", "generate <data-dir>/secret when there is none (a server must then use that secret)"),
  ["dataDir", "secret"],
).action(async (options: { workspace: string; role: Role; sub?: string; expires: string; createSecret?: boolean } & Record<string, unknown>) => {
  if (!/^\d+\s*(s|m|h|d|w|y)$/.test(options.expires)) {
    throw new InvalidArgumentError(`--expires must look like 30d, 12h, 90m or 3600s (got "${options.expires}")`);
  }
  const config = await loadConfig({
    flags: { dataDir: options.dataDir as string | undefined, secret: options.secret as string | undefined },
    createSecret: options.createSecret ?? false,
  });
  const token = await createAuth(config.secret).issue(
    { sub: options.sub ?? options.role, workspaceId: options.workspace, role: options.role },
    { expiresIn: options.expires },
  );
  // Which secret signed it (a path or a variable's name, never the value): a token refused
  // by the server is then explained at once.
  process.stderr.write(`turnqueue token: signed with the secret from ${config.secretSource}\n`);
  process.stdout.write(`${token}\n`);
});

/** The echo runtime beside the server, on the workspace whose token `serve` prints. */
async function startLocalEchoAgent(app: Turnqueue) {
  const { startEchoAgent } = await import("../client/echo-agent.js");
  const token = await app.services.auth.issue({ sub: "echo-agent", workspaceId: LOCAL_WORKSPACE, role: "agent" });
  process.stdout.write(`  echo agent: running on workspace "${LOCAL_WORKSPACE}" (its turns are printed below)\n`);
  return startEchoAgent({ url: app.url, token });
}

const number = (what: string, min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${what} must be a number from ${min} to ${max}.`);
  return n;
};

program
  .command("agent")
  .description("run an agent runtime that receives this workspace's dispatched turns")
  .option("--echo", "the built-in echo runtime (turns echo their text back); write your own with client/agent.ts")
  .option("--codex", "OpenAI Codex through `codex app-server` (npm install @openai/codex)")
  .option("--acp <command>", 'any Agent Client Protocol agent, e.g. "npx @zed-industries/claude-agent-acp"')
  .requiredOption("--url <url>", "the server, e.g. http://127.0.0.1:4780")
  .requiredOption("--token <token>", "an agent token: turnqueue token --workspace W --role agent")
  .option("--cwd <dir>", "the directory the agent works in (--codex, --acp)", process.cwd())
  .addOption(
    new Option("--approve <policy>", "answer to the agent's permission requests (--codex, --acp)")
      .choices(APPROVE_POLICIES)
      .default("read-only"),
  )
  .option("--delay-ms <ms>", "how long each echo turn works", number("--delay-ms", 0, 3_600_000), 500)
  .option("--failure-rate <rate>", "share of turns whose start fails (retryably), 0..1", number("--failure-rate", 0, 1), 0)
  .action(async (options: AgentCommandOptions) => {
    const kinds = [options.echo && "echo", options.codex && "codex", options.acp && "acp"].filter((k): k is string => Boolean(k));
    if (kinds.length !== 1) throw new InvalidArgumentError(`pick one runtime: --echo, --codex or --acp "<command>" (got ${kinds.map((k) => `--${k}`).join(", ") || "none"})`);
    const cwd = path.resolve(options.cwd);
    if (!existsSync(cwd)) throw new InvalidArgumentError(`--cwd ${cwd} does not exist`);
    const { agentConnectionReporter } = await import("./startup/agent-connection.js");
    // "connected" once the server accepted the token; a refused token ends the process.
    const reporting = agentConnectionReporter(options.url, `${kinds[0]} agent`);
    let agent: Agent;
    if (options.echo) {
      const { startEchoAgent } = await import("../client/echo-agent.js");
      agent = startEchoAgent({ url: options.url, token: options.token, delayMs: options.delayMs, failureRate: options.failureRate, ...reporting });
    } else {
      const adapter = options.codex
        ? (await import("../client/agents/codex.js")).codexAdapter({ cwd, approve: options.approve })
        : (await import("../client/agents/acp.js")).acpAdapter({ command: options.acp!, cwd, approve: options.approve });
      const { runAgent } = await import("../client/agent.js");
      agent = runAgent({ url: options.url, token: options.token, ...reporting, ...adapter });
    }
    const stop = () => void agent.close().then(() => process.exit(0));
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });

interface AgentCommandOptions {
  echo?: boolean;
  codex?: boolean;
  acp?: string;
  url: string;
  token: string;
  cwd: string;
  approve: ApprovePolicy;
  delayMs: number;
  failureRate: number;
}

registerOperatorCommands(program);

await program.parseAsync().catch(reportFailure);
