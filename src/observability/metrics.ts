import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** The service's own metrics; plug-ins register theirs on `registry` beside these. */
export interface Metrics {
  registry: Registry;
  /** Commands by type and outcome (ok, replayed, refused, unavailable, error). */
  commands: Counter<"type" | "outcome">;
  commandSeconds: Histogram<"type">;
  /** HTTP requests by door (trpc, healthz, readyz, metrics, static) and status code. */
  httpRequests: Counter<"door" | "status">;
  /** Open WebSocket connections by door (trpc, yjs). */
  websockets: Gauge<"door">;
  /** Open TCP connections to the HTTP server. */
  httpConnections: Gauge;
}

/** One registry per server instance, so several servers in one test process never collide. */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    commands: new Counter({
      name: "turnqueue_commands_total",
      help: "Commands executed, by type and outcome",
      labelNames: ["type", "outcome"],
      registers: [registry],
    }),
    commandSeconds: new Histogram({
      name: "turnqueue_command_duration_seconds",
      help: "Time from a command's arrival at the engine to its commit (or refusal)",
      labelNames: ["type"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: "turnqueue_http_requests_total",
      help: "HTTP requests, by door and status code",
      labelNames: ["door", "status"],
      registers: [registry],
    }),
    websockets: new Gauge({
      name: "turnqueue_websocket_connections",
      help: "Open WebSocket connections, by door",
      labelNames: ["door"],
      registers: [registry],
    }),
    httpConnections: new Gauge({
      name: "turnqueue_http_connections",
      help: "Open TCP connections to the HTTP server",
      registers: [registry],
    }),
  };
}
