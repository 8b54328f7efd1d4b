import pino, { type Logger } from "pino";
import pretty from "pino-pretty";

/**
 * Structured JSON logs on stderr (stdout is the CLI's own output: the URL and token), pretty
 * only when a person is watching. Synchronous, so the last lines before an exit are kept.
 */
export function createLogger(level: string): Logger {
  const stream = process.stderr.isTTY
    ? pretty({ destination: 2, sync: true, colorize: true, ignore: "pid,hostname" })
    : pino.destination({ dest: 2, sync: true });
  return pino({ level, base: { service: "turnqueue" } }, stream);
}
