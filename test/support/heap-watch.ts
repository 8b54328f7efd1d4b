import { writeSync } from "node:fs";
import { expect } from "vitest";

/**
 * A test file whose heap keeps growing ends its worker with V8's out-of-memory trace, which
 * names no test (CI saw one at 3.8 GB after ten minutes). Past this much heap, the worker
 * says on stderr which file and test were running, with what kept the process busy, and
 * exits, so the run fails with a name instead of a stack of V8 frames.
 */
const LIMIT_BYTES = 1.5 * 2 ** 30;

setInterval(() => {
  const used = process.memoryUsage().heapUsed;
  if (used < LIMIT_BYTES) return;
  const { testPath, currentTestName } = expect.getState();
  const busy = Object.entries(
    process.getActiveResourcesInfo().reduce<Record<string, number>>((n, kind) => ({ ...n, [kind]: (n[kind] ?? 0) + 1 }), {}),
  ).map(([kind, n]) => `${kind} ×${n}`);
  // Straight to the file descriptor: the worker exits next, before a console line would be relayed.
  writeSync(2, `\nheap watch: ${Math.round(used / 2 ** 20)} MB of heap in ${testPath ?? "?"} › ${currentTestName ?? "(between tests)"}; active: ${busy.join(", ")}\n`);
  // Vitest stubs process.exit in its workers; a signal is what really ends one.
  process.kill(process.pid, "SIGKILL");
}, 1_000).unref();
