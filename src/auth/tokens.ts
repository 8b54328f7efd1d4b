import { jwtVerify, SignJWT } from "jose";
import { LRUCache } from "lru-cache";
import { z } from "zod";
import { Id, Role } from "../domain/index.js";

/** Who is calling, from a verified token. */
export interface Principal {
  sub: string;
  workspaceId: string;
  role: Role;
  /**
   * When the token stops being valid (ms since the epoch), set by `verify`; null or absent:
   * never. Long-lived connections end then (see token-expiry.ts).
   */
  expiresAt?: number | null;
}

export interface Auth {
  /** Throws when the token is missing, malformed, expired or not signed by us. */
  verify(token: string | null | undefined): Promise<Principal>;
  issue(principal: Principal, options?: { expiresIn?: string }): Promise<string>;
}

const ALGORITHM = "HS256";
/**
 * Tokens already verified, kept until they expire (at most VERIFIED_TTL_MS): a client sends
 * the same token on every call, and jose's HMAC check goes through WebCrypto's thread pool.
 * A signature's verdict never changes; the expiry is checked again on every hit.
 */
const VERIFIED_TOKENS = 10_000;
const VERIFIED_TTL_MS = 5 * 60_000;

/** The claims docs/contract.md defines; anything else in a token is ignored. */
const Claims = z.object({ sub: Id, ws: Id, role: Role });

/** Why a token was refused; the API answers UNAUTHORIZED with this message. */
export class AuthError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuthError";
  }
}

/** HS256 tokens signed with the server's secret, scoped to one workspace and one role. */
export function createAuth(secret: string): Auth {
  if (secret.length === 0) throw new Error("the token secret must not be empty");
  const key = new TextEncoder().encode(secret);
  const verified = new LRUCache<string, Principal>({ max: VERIFIED_TOKENS, ttl: VERIFIED_TTL_MS });

  return {
    async verify(token) {
      if (!token) throw new AuthError("no token: send one as `Authorization: Bearer …` or connectionParams.token");
      const known = verified.get(token);
      if (known && (known.expiresAt == null || known.expiresAt > Date.now())) return { ...known };
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM] }));
      } catch (error) {
        throw new AuthError(`invalid token: ${(error as Error).message}`, { cause: error });
      }
      const claims = Claims.safeParse(payload);
      if (!claims.success) throw new AuthError("invalid token: the claims sub, ws and role are required");
      const exp = (payload as { exp?: unknown }).exp;
      const principal: Principal = {
        sub: claims.data.sub,
        workspaceId: claims.data.ws,
        role: claims.data.role,
        expiresAt: typeof exp === "number" ? exp * 1000 : null,
      };
      const left = principal.expiresAt == null ? VERIFIED_TTL_MS : principal.expiresAt - Date.now();
      if (left > 0) verified.set(token, principal, { ttl: Math.min(VERIFIED_TTL_MS, left) });
      return { ...principal };
    },

    async issue(principal: Principal, options?: { expiresIn?: string }) {
      const jwt = new SignJWT({ ws: principal.workspaceId, role: principal.role })
        .setProtectedHeader({ alg: ALGORITHM })
        .setSubject(principal.sub)
        .setIssuedAt();
      if (options?.expiresIn) jwt.setExpirationTime(options.expiresIn);
      return jwt.sign(key);
    },
  };
}
