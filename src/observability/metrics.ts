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
  /** WebSocket upgrades received for a known door, by door (the door may still refuse it). */
  connections: Counter<"door">;
  /** Connections and calls refused, by door and reason (UNAUTHORIZED, FORBIDDEN, not_found, stopping). */
  refusals: Counter<"door" | "reason">;
  /** Claims committed here, by kind (turn, steer). */
  dispatches: Counter<"kind">;
  /** Items that failed for good, by reason (timeout, start_failed). */
  failures: Counter<"reason">;
  /** Retryable start failures that scheduled another attempt. */
  retries: Counter;
  /** Dispatches the agent never started in time. */
  timeouts: Counter;
  /** Queue holds, by reason (user, failure, interrupted). */
  holds: Counter<"reason">;
  readyToDispatchedSeconds: Histogram;
  dispatchedToStartedSeconds: Histogram;
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

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
    connections: new Counter({
      name: "turnqueue_connections_total",
      help: "WebSocket upgrades received, by door",
      labelNames: ["door"],
      registers: [registry],
    }),
    refusals: new Counter({
      name: "turnqueue_refusals_total",
      help: "Connections and calls refused, by door and reason",
      labelNames: ["door", "reason"],
      registers: [registry],
    }),
    dispatches: new Counter({ name: "turnqueue_dispatches_total", help: "Items claimed and dispatched to an agent, by kind", labelNames: ["kind"], registers: [registry] }),
    failures: new Counter({ name: "turnqueue_items_failed_total", help: "Items that failed for good, by reason", labelNames: ["reason"], registers: [registry] }),
    retries: new Counter({ name: "turnqueue_retries_total", help: "Retryable start failures that scheduled another attempt", registers: [registry] }),
    timeouts: new Counter({ name: "turnqueue_dispatch_timeouts_total", help: "Dispatches the agent did not start in time", registers: [registry] }),
    holds: new Counter({ name: "turnqueue_holds_total", help: "Queue holds (pauses), by reason", labelNames: ["reason"], registers: [registry] }),
    readyToDispatchedSeconds: new Histogram({
      name: "turnqueue_dispatch_ready_to_dispatched_seconds",
      help: "From an item being sendable (arrived, retry due, agent free) to its claim",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
    dispatchedToStartedSeconds: new Histogram({
      name: "turnqueue_dispatch_dispatched_to_started_seconds",
      help: "From a claim to the agent reporting the turn started",
      buckets: LATENCY_BUCKETS,
      registers: [registry],
    }),
  };
}
