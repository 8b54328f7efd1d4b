import { describe, it } from "vitest";
import { claudeEnv, workDir } from "../support/agents.js";
import { readmeAgentCommands, runReadmeCommand } from "./readme-commands.js";

describe('README "Drive a real agent" runs as written (real server, real Claude Code over ACP, scripted model)', { timeout: 300_000 }, () => {
  it('turnqueue agent --acp "npx @zed-industries/claude-agent-acp" completes a queued item', async () => {
    const [, acp] = await readmeAgentCommands();
    await runReadmeCommand(acp!, (h) => claudeEnv(h.model.url), workDir());
  });
});
