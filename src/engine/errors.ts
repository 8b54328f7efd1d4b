/** A command id already ran with another command: the API answers CONFLICT. */
export class CommandIdReusedError extends Error {
  readonly reason = "COMMAND_ID_REUSED";
  constructor(
    readonly threadId: string,
    readonly commandId: string,
  ) {
    super(`command id ${commandId} was already used on thread ${threadId} for another command`);
    this.name = "CommandIdReusedError";
  }
}

/** The engine is shutting down and takes no new commands. */
export class EngineClosedError extends Error {
  constructor() {
    super("the engine is closed");
    this.name = "EngineClosedError";
  }
}
