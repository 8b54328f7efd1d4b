// Loaded into `turnqueue serve` by `BENCH_BREAKDOWN=1 npm run bench:agents` (node --import):
// registers the OpenTelemetry SDK, as an operator's setup file would (README, "Tracing"), and
// writes every ended span to the file TURNQUEUE_BENCH_SPANS names, one JSON line each, in
// batches off the request path. Times are epoch milliseconds, as the bench's own clock reads.
import { appendFile } from "node:fs/promises";
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";

const file = process.env.TURNQUEUE_BENCH_SPANS;
const ms = ([seconds, nanos]) => seconds * 1e3 + nanos / 1e6;
const exporter = {
  export(spans, done) {
    const lines = spans.map((s) =>
      JSON.stringify({
        name: s.name,
        traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId,
        parentId: s.parentSpanContext?.spanId ?? null,
        start: ms(s.startTime),
        end: ms(s.endTime),
      }),
    );
    appendFile(file, lines.join("\n") + "\n").then(() => done({ code: 0 }), (error) => done({ code: 1, error }));
  },
  shutdown: async () => {},
};
new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 100 })] }).register();
