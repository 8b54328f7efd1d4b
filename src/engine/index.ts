export { createEngine, type EngineOptions } from "./engine.js";
export { CommandIdReusedError, EngineClosedError } from "./errors.js";
export { EventFeed, placeIn, type Committed } from "./feed.js";
export type { Engine, ExecuteOptions, ExecuteResult, PreClaimBarrier } from "./types.js";
