import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
/** The real agent binaries the dev dependencies install. */
export const CODEX_BIN = path.join(root, "node_modules/.bin/codex");

/** A model name the scripted model server refuses as unknown. */
export const UNKNOWN_MODEL = "no-such-model";

/**
 * The environment of a real Codex whose model is the scripted server: its own CODEX_HOME
 * with a `mock` provider on loopback (no retries of its own: Turnqueue's are under test).
 * `model` names the model Codex asks for. For a name Codex does not know it warns about
 * missing model metadata (codex-acp sends that as agent text before the model is asked); for
 * one it knows it offers MCP tools through `tool_search` instead of by name.
 */
export function codexEnv(modelUrl: string, model = "scripted-model"): NodeJS.ProcessEnv {
  const home = mkdtempSync(path.join(tmpdir(), "turnqueue-codex-"));
  writeFileSync(
    path.join(home, "config.toml"),
    [
      `model = "${model}"`,
      `model_provider = "mock"`,
      ``,
      `[model_providers.mock]`,
      `name = "scripted model"`,
      `base_url = "${modelUrl}/v1"`,
      `wire_api = "responses"`,
      `env_key = "SCRIPTED_MODEL_KEY"`,
      `request_max_retries = 0`,
      `stream_max_retries = 0`,
      ``,
    ].join("\n"),
  );
  return { ...process.env, CODEX_HOME: home, HOME: home, SCRIPTED_MODEL_KEY: "scripted", RUST_LOG: "error" };
}

/** A scratch directory for an agent to work in. */
export const workDir = () => mkdtempSync(path.join(tmpdir(), "turnqueue-work-"));

export const CLAUDE_ACP_BIN = path.join(root, "node_modules/.bin/claude-agent-acp");
export const CODEX_ACP_BIN = path.join(root, "node_modules/.bin/codex-acp");

/** The environment of a real Claude Code whose model is the scripted server, with a HOME of its own (no retries of its own). */
export function claudeEnv(modelUrl: string): NodeJS.ProcessEnv {
  const home = mkdtempSync(path.join(tmpdir(), "turnqueue-claude-"));
  // This machine sets IS_SANDBOX=yes: claude-agent-acp then asks Claude Code for
  // --allow-dangerously-skip-permissions, which Claude Code refuses as root unless it is "1".
  const { IS_SANDBOX: _sandbox, ...inherited } = process.env;
  return {
    ...inherited,
    HOME: home,
    ANTHROPIC_BASE_URL: modelUrl,
    ANTHROPIC_API_KEY: "scripted",
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: "1",
    // No retries of its own (it would wait out a 429 itself): Turnqueue's are under test.
    CLAUDE_CODE_MAX_RETRIES: "0",
    DISABLE_AUTOUPDATER: "1",
  };
}
