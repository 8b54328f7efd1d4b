import WebSocket from "ws";

/**
 * tRPC spoken by hand, for inputs no typed client would send (wrong types, NUL, lone
 * surrogates, huge values): one call over HTTP, or calls on one WebSocket, answering the
 * wire's status and JSON as they are.
 */
export type Kind = "query" | "mutation" | "subscription";

export interface RawError {
  message: string;
  data?: { code?: string; httpStatus?: number; reason?: string | null; zodError?: unknown };
}

export interface RawAnswer {
  /** HTTP status; over WebSocket, the error's `data.httpStatus` (200 on success). */
  status: number;
  error: RawError | null;
  /** The call's result (for a subscription over WebSocket: `{ type: "started" }`). */
  result: unknown;
}

/**
 * One call over HTTP. A subscription is a server-sent event stream: it is read up to its
 * first word (`connected`, the stream is running: result `{ type: "started" }`, as over
 * WebSocket; or `serialized-error`) and then closed.
 */
export async function httpCall(url: string, token: string | null, kind: Kind, path: string, input: unknown): Promise<RawAnswer> {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const encoded = input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify(input))}`;
  const stop = new AbortController();
  const response =
    kind === "mutation"
      ? await fetch(`${url}/trpc/${path}`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json" },
          body: input === undefined ? undefined : JSON.stringify(input),
        })
      : await fetch(`${url}/trpc/${path}${encoded}`, { headers, signal: stop.signal });
  if (response.headers.get("content-type")?.startsWith("text/event-stream")) {
    try {
      return fromEventStream(response.status, await firstWord(response.body!));
    } finally {
      stop.abort();
    }
  }
  const text = await response.text();
  let body: { result?: { data?: unknown }; error?: RawError } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = { error: { message: text } };
  }
  return { status: response.status, error: body.error ?? null, result: body.result?.data };
}

/** The stream's text up to its first `connected` or `serialized-error` event, or its end. */
async function firstWord(body: ReadableStream<Uint8Array>): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    if (/^event: (connected|serialized-error)\n(?:.*\n)*?\n/m.test(text)) break;
  }
  return text;
}

/**
 * A subscription over HTTP answers a server-sent event stream (status 200 by then); its
 * `serialized-error` event is the answer, with the error's own HTTP status.
 */
function fromEventStream(status: number, text: string): RawAnswer {
  const events = text.split("\n\n").map((block) => ({
    event: /^event: (.*)$/m.exec(block)?.[1],
    data: /^data: (.*)$/m.exec(block)?.[1],
  }));
  const failed = events.find((e) => e.event === "serialized-error" && e.data);
  if (!failed) return { status, error: null, result: events.some((e) => e.event === "connected") ? { type: "started" } : events.map((e) => e.data) };
  const error = JSON.parse(failed.data!) as RawError;
  return { status: error.data?.httpStatus ?? status, error, result: undefined };
}

interface WireMessage {
  id: number | string | null;
  result?: { type?: string; data?: unknown };
  error?: RawError;
}

/** A tRPC WebSocket opened with `connectionParams: { token }`, taking raw calls. */
export class RawSocket {
  private nextId = 1;
  private readonly waiting = new Map<number, (message: WireMessage) => void>();
  /** Every message with an id no call waits for (data of running subscriptions, …). */
  readonly unsolicited: WireMessage[] = [];
  closed: { code: number; reason: string } | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as WireMessage;
      const waiter = typeof message.id === "number" ? this.waiting.get(message.id) : undefined;
      if (waiter) {
        this.waiting.delete(message.id as number);
        waiter(message);
      } else this.unsolicited.push(message);
    });
    ws.on("close", (code, reason) => {
      this.closed = { code, reason: String(reason) };
      for (const waiter of this.waiting.values()) waiter({ id: null, error: { message: `socket closed (${code})` } });
      this.waiting.clear();
    });
  }

  static open(wsUrl: string, token: string | null): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${wsUrl}/trpc?connectionParams=1`);
      const socket = new RawSocket(ws);
      ws.once("open", () => {
        ws.send(JSON.stringify({ method: "connectionParams", data: token ? { token } : {} }));
        resolve(socket);
      });
      ws.once("error", reject);
    });
  }

  /** The first answer to one call; a subscription that started is stopped at once unless `keep`. */
  async call(kind: Kind, path: string, input: unknown, options: { keep?: boolean } = {}): Promise<RawAnswer & { id: number }> {
    const id = this.nextId++;
    const answered = new Promise<WireMessage>((resolve) => this.waiting.set(id, resolve));
    this.ws.send(JSON.stringify({ id, method: kind, params: { path, input } }));
    const message = await answered;
    if (kind === "subscription" && !message.error && !options.keep) this.stop(id);
    const status = message.error ? (message.error.data?.httpStatus ?? 0) : 200;
    return { id, status, error: message.error ?? null, result: message.result };
  }

  /** Several calls in one message (a tRPC batch): the first answer to each. */
  async batch(calls: { kind: Kind; path: string; input: unknown }[]): Promise<RawAnswer[]> {
    const ids = calls.map(() => this.nextId++);
    const answered = ids.map((id) => new Promise<WireMessage>((resolve) => this.waiting.set(id, resolve)));
    this.ws.send(JSON.stringify(calls.map((c, i) => ({ id: ids[i], method: c.kind, params: { path: c.path, input: c.input } }))));
    return (await Promise.all(answered)).map((message) => ({
      status: message.error ? (message.error.data?.httpStatus ?? 0) : 200,
      error: message.error ?? null,
      result: message.result,
    }));
  }

  stop(id: number): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ id, method: "subscription.stop" }));
  }

  /** Resolves when the server closes the socket (or at once if it is closed). */
  whenClosed(): Promise<{ code: number; reason: string }> {
    if (this.closed) return Promise.resolve(this.closed);
    return new Promise((resolve) => this.ws.once("close", (code, reason) => resolve({ code, reason: String(reason) })));
  }

  close(): void {
    this.ws.close();
  }
}
