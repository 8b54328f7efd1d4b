import type { DocView } from "../../src/collab/schema.js";
import type { StoredEvent } from "../../src/domain/index.js";

/**
 * A Jepsen-style history: what each client asked (invoke), and what it learned (ok, a
 * definite fail, or unknown when the answer never came), with wall-clock times taken on
 * this machine, which every process of the run shares.
 */
export type OpType = "add" | "edit" | "type" | "move" | "remove" | "sendNow" | "pause" | "resume" | "retry";

export interface Op {
  id: number;
  /** Which client issued it (one logical user each, serial). */
  client: string;
  /** Which instance it was sent to. */
  instance: string;
  type: OpType;
  threadId: string;
  queueItemId?: string;
  messageId?: string;
  /** add: the message's text; edit and type: the item's whole new text. */
  text?: string;
  afterId?: string | null;
  /** The idempotency key it carried (messageId for add; commandId otherwise; none for typing). */
  key?: string;
  invokeAt: number;
  outcome: "ok" | "fail" | "unknown";
  completeAt: number;
  /** The thread version an acknowledged command returned. */
  version?: number;
  /** The refusal reason or error of a failed or unknown one. */
  error?: string;
}

/** What the agent runtime recorded (test/chaos/agent-runtime.ts), one line each. */
export interface AgentRecord {
  at: number;
  /** Which run of the runtime process (a killed runtime is started again with the next number). */
  incarnation: number;
  /** handler: a dispatch reached the handler; started: the server acknowledged its turn's start;
   * refused: the server refused that start (the dispatch was stale); returned: the turn's work ended;
   * steer: a steer was delivered into the running turn. */
  kind: "handler" | "refused" | "started" | "returned" | "steer";
  threadId: string;
  queueItemId: string;
  dispatchId: string;
  text?: string;
}

/** A nemesis's own record: when it struck and when it healed, for reading a violation against. */
export interface NemesisRecord {
  at: number;
  what: string;
}

/** Everything the checker reads: the histories and, after the run, the truth in the store. */
export interface RunHistory {
  ops: Op[];
  agent: AgentRecord[];
  nemesis: NemesisRecord[];
  /** Each thread's whole event log, in version order. */
  log: Map<string, StoredEvent[]>;
  /** The projection tables before and after a rebuild from the log; equal when the projections are right. */
  projections: { live: unknown; rebuilt: unknown };
  /** Each thread's document as a fresh client of each instance reads it, and what the log says it must be. */
  documents: { instance: string; threadId: string; view: DocView; expected: DocView }[];
}

/** Records a client's operations: invoke first, then exactly one completion. */
export class Recorder {
  readonly ops: Op[] = [];
  readonly nemesis: NemesisRecord[] = [];
  private next = 0;

  async record<T>(
    op: Omit<Op, "id" | "invokeAt" | "outcome" | "completeAt">,
    call: () => Promise<T>,
    classify: (error: unknown) => { outcome: "fail" | "unknown"; error: string },
    onOk: (value: T, op: Op) => void = () => {},
  ): Promise<Op> {
    const entry: Op = { ...op, id: this.next++, invokeAt: Date.now(), outcome: "unknown", completeAt: 0 };
    this.ops.push(entry);
    try {
      const value = await call();
      entry.completeAt = Date.now();
      entry.outcome = "ok";
      onOk(value, entry);
    } catch (error) {
      entry.completeAt = Date.now();
      const { outcome, error: message } = classify(error);
      entry.outcome = outcome;
      entry.error = message;
    }
    return entry;
  }

  strike(what: string): void {
    this.nemesis.push({ at: Date.now(), what });
  }
}
