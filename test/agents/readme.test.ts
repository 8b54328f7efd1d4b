import { describe, expect, it } from "vitest";
import { codexEnv, workDir } from "../support/agents.js";
import { readmeAgentCommands, runReadmeCommand } from "./readme-commands.js";

describe('README "Drive a real agent" runs as written (real server, real Codex, scripted model)', { timeout: 300_000 }, () => {
  it("turnqueue agent --codex completes a queued item", async () => {
    const commands = await readmeAgentCommands();
    expect(commands.map((c) => c.split(" ")[2])).toEqual(["--codex", "--acp"]);
    await runReadmeCommand(commands[0]!, (h) => codexEnv(h.model.url), workDir());
  });
});
