import { decodeJwt } from "jose";

/**
 * A token, or where to get one: a function the SDK calls whenever it needs a token and the
 * one it holds is about to expire (so short-lived tokens are renewed, and connections the
 * server closes at expiry reconnect with a fresh one).
 */
export type TokenOption = string | (() => string | Promise<string>);

/** A token this close to its expiry counts as expired: a fraction of its lifetime, at most 10 s. */
const MARGIN_MAX_MS = 10_000;
const MARGIN_FRACTION = 0.2;

interface Held {
  token: string;
  /** When to stop using it (ms since the epoch), or null: never. */
  staleAt: number | null;
}

/** The SDK's one holder of the caller's token: asks the callback again only when needed. */
export class TokenSource {
  private held: Held | null = null;
  private pending: Promise<string> | null = null;

  constructor(private readonly option: TokenOption) {
    if (typeof option === "string") this.held = hold(option);
  }

  static from(token: TokenOption | TokenSource): TokenSource {
    return token instanceof TokenSource ? token : new TokenSource(token);
  }

  /** A token that is not about to expire (from the callback when the one held is). */
  get(): Promise<string> {
    const held = this.held;
    if (held && (held.staleAt === null || Date.now() < held.staleAt)) return Promise.resolve(held.token);
    if (typeof this.option === "string") return Promise.resolve(this.option);
    const renew = this.option;
    this.pending ??= (async () => {
      try {
        const token = await renew();
        this.held = hold(token);
        return token;
      } finally {
        this.pending = null;
      }
    })();
    return this.pending;
  }

  /** The token held now, for readers that cannot wait (a URL built synchronously); "" before the first. */
  peek(): string {
    return this.held?.token ?? "";
  }
}

function hold(token: string): Held {
  return { token, staleAt: staleAtOf(token) };
}

/** When to stop using `token` (ms since the epoch): a margin before its expiry; null: never expires. */
export function staleAtOf(token: string): number | null {
  let exp: number | undefined;
  let iat: number | undefined;
  try {
    ({ exp, iat } = decodeJwt(token));
  } catch {
    // Not a JWT we can read: the server decides; use it until it is refused.
  }
  if (exp === undefined) return null;
  const lifetime = iat === undefined ? MARGIN_MAX_MS : (exp - iat) * 1000;
  return exp * 1000 - Math.min(MARGIN_MAX_MS, lifetime * MARGIN_FRACTION);
}
