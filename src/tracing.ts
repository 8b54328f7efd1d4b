import { context, propagation, SpanStatusCode, trace, type Context, type Span } from "@opentelemetry/api";

/**
 * Spans through `@opentelemetry/api` only: without an SDK registered (the default) every
 * call here is a no-op. An operator turns tracing on by loading an SDK before the server,
 * e.g. `node --import ./otel-setup.mjs bin/turnqueue.mjs serve`; see the README.
 */
export const tracer = trace.getTracer("turnqueue");

/** Runs `work` in a new active span under `parent` (default: the active context), ending it with the outcome. */
export function inSpan<T>(name: string, attributes: Record<string, string | number>, work: (span: Span) => Promise<T>, parent?: Context): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, parent ?? context.active(), async (span) => {
    try {
      return await work(span);
    } catch (error) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.message });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The W3C `traceparent` of a context, when tracing is on. */
export function traceparentOf(ctx: Context): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/** The context a `traceparent` (a header, a dispatch field) continues; the active one without it. */
export function contextOf(traceparent: string | undefined | null): Context {
  if (!traceparent) return context.active();
  return propagation.extract(context.active(), { traceparent });
}

const REMEMBERED = 10_000;

/**
 * Trace contexts handed across an asynchronous hop inside this process: a command's commit
 * to the reactor's claim it triggers (by thread), and a claim to the dispatch sent to the
 * agent (by dispatch id). Only recorded while a span records, so it costs nothing when off.
 * Another instance's reactor starts a trace of its own.
 */
class Handoff {
  private readonly map = new Map<string, Context>();
  put(key: string, ctx: Context): void {
    if (!trace.getSpan(ctx)?.isRecording()) return;
    this.map.delete(key);
    this.map.set(key, ctx);
    if (this.map.size > REMEMBERED) this.map.delete(this.map.keys().next().value!);
  }
  get(key: string): Context | undefined {
    return this.map.get(key);
  }
  take(key: string): Context | undefined {
    const ctx = this.map.get(key);
    this.map.delete(key);
    return ctx;
  }
}

/** threadId → the context of the last command committed on it. */
export const afterCommit = new Handoff();
/** dispatchId → the context of the claim that made it (read by every stream that delivers it). */
export const ofDispatch = new Handoff();
