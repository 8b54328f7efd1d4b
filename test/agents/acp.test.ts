import { afterAll, beforeAll, describe, it } from "vitest";
import { CODEX_ACP_BIN, codexEnv, workDir } from "../support/agents.js";
import { startAcp, threeInOrder } from "./acp-shared.js";
import { startAgentHarness, type AgentHarness } from "./harness.js";

describe("ACP: codex-acp (the real agent, scripted model) drives a thread's queue", () => {
  let h: AgentHarness;
  beforeAll(async () => {
    h = await startAgentHarness();
    startAcp(h, CODEX_ACP_BIN, codexEnv(h.model.url), workDir());
  });
  afterAll(() => h?.close());

  it("three queued items reach codex-acp in order, one prompt each, in one ACP session", () => threeInOrder(h));
});
