export { createEngine, type EngineOptions } from "./engine.js";
export { CommandIdReusedError, EngineClosedError } from "./errors.js";
export type { Engine, ExecuteOptions, ExecuteResult, PreClaimBarrier } from "./types.js";
