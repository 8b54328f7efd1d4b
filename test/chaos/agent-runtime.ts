/**
 * The agent runtime of a chaos run, as its own process (so a nemesis can SIGKILL it): the
 * SDK's runAgent with a handler that works for a while and records, before anything else
 * can happen, every dispatch it received and what became of the turn. One JSON line per
 * record, appended synchronously, so a record written is a record kept through a SIGKILL.
 */
import { appendFileSync } from "node:fs";
import { abortableSleep, ReportRefusedError, runAgent } from "../../client/agent.js";
import type { AgentRecord } from "./history.js";

const { CHAOS_URL, CHAOS_TOKEN, CHAOS_HISTORY, CHAOS_INCARNATION, CHAOS_WORK_MS } = process.env;
if (!CHAOS_URL || !CHAOS_TOKEN || !CHAOS_HISTORY) throw new Error("CHAOS_URL, CHAOS_TOKEN and CHAOS_HISTORY are required");
const incarnation = Number(CHAOS_INCARNATION ?? 1);
const workMs = Number(CHAOS_WORK_MS ?? 100);

const record = (r: Omit<AgentRecord, "at" | "incarnation">) =>
  appendFileSync(CHAOS_HISTORY, `${JSON.stringify({ ...r, at: Date.now(), incarnation })}\n`);

const agent = runAgent({
  url: CHAOS_URL,
  token: CHAOS_TOKEN,
  autoReady: true,
  async onTurn(turn) {
    const { threadId, queueItemId, dispatchId, message } = turn.dispatch;
    const base = { threadId, queueItemId, dispatchId };
    record({ ...base, kind: "handler", text: message.text });
    try {
      await turn.start();
    } catch (error) {
      record({ ...base, kind: "refused", text: error instanceof ReportRefusedError ? (error.reason ?? error.message) : String(error) });
      throw error;
    }
    record({ ...base, kind: "started" });
    const stop = AbortSignal.any([turn.signal, turn.interrupt]);
    await abortableSleep(workMs, stop).catch(() => {});
    record({ ...base, kind: "returned" });
    return { outcome: "completed" };
  },
  async onSteer(dispatch) {
    record({ threadId: dispatch.threadId, queueItemId: dispatch.queueItemId, dispatchId: dispatch.dispatchId, kind: "steer", text: dispatch.message.text });
  },
});

process.once("SIGTERM", () => void agent.close().then(() => process.exit(0)));
