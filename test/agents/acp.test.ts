import { afterAll, beforeAll, describe, it } from "vitest";
import { CODEX_ACP_BIN, codexEnv, workDir } from "../support/agents.js";
import { rateLimitedOnce, startAcp, threeInOrder } from "./acp-shared.js";
import { startAgentHarness, type AgentHarness } from "./harness.js";

describe("ACP: codex-acp (the real agent, scripted model) drives a thread's queue", () => {
  let h: AgentHarness;
  beforeAll(async () => {
    h = await startAgentHarness();
    // A model Codex has metadata for: for an unknown one codex-acp sends a warning as agent
    // text before it asks the model, which would count as the model working on the turn.
    startAcp(h, CODEX_ACP_BIN, codexEnv(h.model.url, "gpt-5.5"), workDir());
  });
  afterAll(() => h?.close());

  it("three queued items reach codex-acp in order, one prompt each, in one ACP session", () => threeInOrder(h));

  it("a 429 from the model is a retryable start failure through codex-acp; the item is retried and runs once", () => rateLimitedOnce(h));
});
