import type { Readable, Writable } from "node:stream";
import { createInterface } from "node:readline";

/** A JSON-RPC error the peer answered with. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

/** The peer went away (its process exited) before answering. */
export class RpcClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RpcClosedError";
  }
}

export interface RpcHandlers {
  /** A notification from the peer. */
  onNotification(method: string, params: unknown): void;
  /** A request from the peer: resolve with the result, or throw to answer an error. Must not hang. */
  onRequest(method: string, params: unknown): Promise<unknown>;
}

/**
 * JSON-RPC 2.0 messages, one JSON object per line, over a child's stdio: how `codex
 * app-server` talks (it omits the `"jsonrpc"` field, which is accepted either way).
 */
export class JsonlRpc {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private closed: Error | null = null;

  constructor(
    input: Readable,
    private readonly output: Writable,
    private readonly handlers: RpcHandlers,
  ) {
    createInterface({ input }).on("line", (line) => this.receive(line));
  }

  request<R>(method: string, params: unknown): Promise<R> {
    if (this.closed) return Promise.reject(this.closed);
    const id = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.send({ id, method, params });
    });
  }

  notify(method: string, params?: unknown): void {
    if (!this.closed) this.send(params === undefined ? { method } : { method, params });
  }

  /** Fails every unanswered request: the peer is gone. */
  close(error: Error): void {
    if (this.closed) return;
    this.closed = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }

  private send(message: Record<string, unknown>) {
    this.output.write(`${JSON.stringify(message)}\n`);
  }

  private receive(line: string) {
    if (!line.trim()) return;
    let message: { id?: number | string; method?: string; params?: unknown; result?: unknown; error?: { code: number; message: string; data?: unknown } };
    try {
      message = JSON.parse(line);
    } catch {
      return; // not protocol output (a stray log line)
    }
    if (message.method !== undefined && message.id !== undefined) {
      const id = message.id;
      this.handlers.onRequest(message.method, message.params).then(
        (result) => this.send({ id, result }),
        (error: unknown) => this.send({ id, error: { code: -32000, message: error instanceof Error ? error.message : String(error) } }),
      );
    } else if (message.method !== undefined) {
      this.handlers.onNotification(message.method, message.params);
    } else if (typeof message.id === "number") {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      if (message.error) waiter.reject(new RpcError(message.error.code, message.error.message, message.error.data));
      else waiter.resolve(message.result);
    }
  }
}
