/**
 * Why `turnqueue` stopped, as its exit code: a supervisor or script can tell a clash of ports
 * from an unreachable database without reading the message. Stable: scripts depend on them.
 */
export const ExitCode = {
  ok: 0,
  /** Anything not foreseen below (a bug): the message carries the stack. */
  internal: 1,
  /** A setting is malformed or two settings contradict each other (flag / variable named). */
  badSetting: 2,
  /** The port is taken or may not be bound. */
  portUnavailable: 3,
  /** The data directory cannot be created or written. */
  dataDirUnusable: 4,
  /** Another running server holds the data directory's lock. */
  dataDirLocked: 5,
  /** The database did not answer within --database-wait-ms. */
  databaseUnreachable: 6,
  /** The database server answered but refused: no such database, or the login was refused. */
  databaseRefused: 7,
  /** Redis did not answer. */
  redisUnreachable: 8,
  /** `token` found no secret to sign with. */
  noSecret: 9,
  /** The server refused the token (none, expired, not signed with its secret, or a role that may not). */
  tokenRefused: 10,
  /** An operator command named a thread or item the server does not know. */
  notFound: 11,
  /** The queue's state refused the change (the message starts with its reason code). */
  refused: 12,
  /** The server (or, for migrate and rebuild-projections, the database) is unreachable or unavailable. */
  unavailable: 13,
} as const;

export type ExitCodeName = keyof typeof ExitCode;

/** A failure the user can fix: one line naming what to change, and the exit code for it. */
export class StartupError extends Error {
  readonly exitCode: number;
  constructor(
    readonly reason: ExitCodeName,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StartupError";
    this.exitCode = ExitCode[reason];
  }
}
