import { Redis, type RedisOptions } from "ioredis";
import type { Bus } from "./bus.js";

export interface RedisBusOptions {
  /** redis://… (or rediss://…) */
  url: string;
  /** Where a throwing handler or a dropped publish is reported; the bus never crashes the process for them. */
  onError?: (error: Error, context: { channel: string; during: "publish" | "handler" }) => void;
  /** Names the two connections in CLIENT LIST (`<name>:pub`, `<name>:sub`), for operators and fault injection. */
  name?: string;
}

type Handler = (message: Uint8Array) => void;

interface Subscription {
  handlers: Set<Handler>;
  /** Resolves when Redis acknowledged the SUBSCRIBE; every subscriber of the channel awaits the same one. */
  live: Promise<void>;
}

/**
 * Redis pub/sub as the `Bus` between instances: one connection publishes, one listens (a
 * Redis connection in subscriber mode can run no other command).
 *
 * Delivery is at-most-once. Redis pub/sub keeps nothing: a message published while a
 * subscriber's connection is down (between a drop and the automatic re-SUBSCRIBE after
 * reconnecting) is lost for that subscriber, and a publish that cannot reach Redis is
 * dropped and reported through `onError` rather than thrown — the publisher has already
 * committed what the message announces, so failing it would misreport a durable command.
 * Subscribers must therefore treat a message as a hint and read the truth from the store
 * (catch up from the log by version/seq, reload document state) when they see a gap.
 */
export class RedisBus implements Bus {
  readonly shared = true;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly reconnected = new Set<() => void>();
  /** A connection was lost and the listeners have not been told it is back. */
  private outage = false;
  private closed = false;

  private constructor(
    private readonly publisher: Redis,
    private readonly subscriber: Redis,
    private readonly onError: NonNullable<RedisBusOptions["onError"]>,
  ) {
    // Binary-safe: `messageBuffer` hands over the raw bytes (Yjs updates are not UTF-8).
    subscriber.on("messageBuffer", (channel: Buffer, message: Buffer) => this.deliver(channel.toString(), message));
    this.watchOutages();
  }

  /**
   * After a connection was lost, once both are back, tells the `onReconnected` listeners:
   * what went through Redis meanwhile is gone both ways. A restart of Redis takes both
   * connections; they come back one after the other, and the listeners hear of it once.
   * ioredis re-SUBSCRIBEs right after "ready"; a PING queued behind those commands answers
   * once they are in force.
   */
  private watchOutages(): void {
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on("close", () => {
        this.outage = true;
      });
      connection.on("ready", () => {
        if (!this.outage || this.closed || this.publisher.status !== "ready" || this.subscriber.status !== "ready") return;
        this.outage = false;
        setImmediate(() => {
          void this.subscriber
            .ping()
            .then(() => {
              for (const listener of [...this.reconnected]) listener();
            })
            .catch(() => {
              // Lost again before the answer: that outage's end tells the listeners.
            });
        });
      });
    }
  }

  onReconnected(listener: () => void): () => void {
    this.reconnected.add(listener);
    return () => this.reconnected.delete(listener);
  }

  /** Connects both connections; rejects with a clear error when Redis is unreachable, so startup fails fast. */
  static async connect(options: RedisBusOptions): Promise<RedisBus> {
    const name = options.name ?? `turnqueue-${process.pid}`;
    const common: RedisOptions = {
      lazyConnect: true,
      // Reconnect for ever, backing off to 2 s: the bus must come back whenever Redis does.
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2_000),
      // A publish waits through a couple of reconnect attempts at most, then is dropped:
      // callers sit on a committed command's acknowledgement and must not hang on the bus.
      maxRetriesPerRequest: 2,
    };
    const publisher = new Redis(options.url, { ...common, connectionName: `${name}:pub` });
    // The listener re-SUBSCRIBEs its channels by itself after every reconnect.
    const subscriber = new Redis(options.url, { ...common, connectionName: `${name}:sub`, autoResubscribe: true });
    // Without a listener ioredis prints every connection error; reconnection is handled above.
    // The first one is kept: `connect()` itself only says "Connection is closed".
    let cause: Error | null = null;
    for (const connection of [publisher, subscriber]) connection.on("error", (error: Error) => (cause ??= error));
    try {
      await Promise.all([publisher.connect(), subscriber.connect()]);
    } catch (error) {
      publisher.disconnect();
      subscriber.disconnect();
      const reason = cause ?? (error as Error);
      throw new Error(`Redis at ${redact(options.url)} is unreachable: ${reason.message}`, { cause: reason });
    }
    const onError = options.onError ?? ((error, context) => console.error(`turnqueue bus (${context.during} on ${context.channel}):`, error));
    return new RedisBus(publisher, subscriber, onError);
  }

  async publish(channel: string, message: Uint8Array): Promise<void> {
    this.assertOpen();
    try {
      await this.publisher.publish(channel, Buffer.from(message.buffer, message.byteOffset, message.byteLength));
    } catch (error) {
      this.onError(error as Error, { channel, during: "publish" });
    }
  }

  async subscribe(channel: string, handler: Handler): Promise<() => Promise<void>> {
    this.assertOpen();
    let subscription = this.subscriptions.get(channel);
    if (!subscription) {
      const live = this.subscriber.subscribe(channel).then(() => undefined);
      subscription = { handlers: new Set(), live };
      this.subscriptions.set(channel, subscription);
      // A refused SUBSCRIBE must not leave a dead entry that later subscribers would trust.
      live.catch(() => {
        if (this.subscriptions.get(channel) === subscription) this.subscriptions.delete(channel);
      });
    }
    subscription.handlers.add(handler);
    try {
      await subscription.live;
    } catch (error) {
      subscription.handlers.delete(handler);
      throw new Error(`could not subscribe to ${channel}: ${(error as Error).message}`, { cause: error });
    }
    const current = subscription;
    let ended = false;
    return async () => {
      if (ended) return;
      ended = true;
      current.handlers.delete(handler);
      if (current.handlers.size > 0 || this.subscriptions.get(channel) !== current) return;
      this.subscriptions.delete(channel);
      // Commands on one connection run in order, so a later SUBSCRIBE to the same channel
      // is processed after this UNSUBSCRIBE and stays in force. If Redis is away the
      // UNSUBSCRIBE fails; that is harmless (messages for a channel without an entry are
      // dropped above) and must not fail the caller's teardown.
      if (!this.closed) await this.subscriber.unsubscribe(channel).catch(() => {});
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.clear();
    this.reconnected.clear();
    await Promise.all([quit(this.publisher), quit(this.subscriber)]);
  }

  private deliver(channel: string, message: Buffer) {
    const subscription = this.subscriptions.get(channel);
    if (!subscription) return;
    for (const handler of [...subscription.handlers]) {
      try {
        handler(message);
      } catch (error) {
        this.onError(error as Error, { channel, during: "handler" });
      }
    }
  }

  private assertOpen() {
    if (this.closed) throw new Error("the Redis bus is closed");
  }
}

/** QUIT politely when connected; drop the socket (and stop reconnecting) otherwise. */
async function quit(connection: Redis) {
  if (connection.status === "ready") {
    await connection.quit().catch(() => connection.disconnect());
  } else {
    connection.disconnect();
  }
}

/** Never print a password from a URL. */
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(invalid Redis URL)";
  }
}
