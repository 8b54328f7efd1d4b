import { createHash } from "node:crypto";
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
/** Tokens remembered as verified: a client sends the same one with every call. */
const VERIFIED_REMEMBERED = 10_000;

/**
 * What this process keeps of a token to know it again: its hash, never the token. The token
 * itself is often a slice of the request's URL, which a kept token would keep whole.
 */
export const tokenKey = (token: string): string => createHash("sha256").update(token).digest("base64url");

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
  // Imported once: given the raw bytes, jose would import them again for every token.
  const key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]);
  /**
   * A token's signature and claims never change, so one verified is taken again without the
   * crypto (on every call of a busy client it is most of the work). Its expiry still counts:
   * an expired one is verified again, and refused. Keyed by `tokenKey`.
   */
  const verified = new LRUCache<string, Principal>({ max: VERIFIED_REMEMBERED });

  return {
    async verify(token) {
      if (!token) throw new AuthError("no token: send one as `Authorization: Bearer …` or connectionParams.token");
      const remembered = tokenKey(token);
      const known = verified.get(remembered);
      if (known && (known.expiresAt == null || Date.now() < known.expiresAt)) return { ...known };
      let payload: unknown;
      try {
        ({ payload } = await jwtVerify(token, await key, { algorithms: [ALGORITHM] }));
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
      verified.set(remembered, principal);
      return { ...principal };
    },

    async issue(principal: Principal, options?: { expiresIn?: string }) {
      const jwt = new SignJWT({ ws: principal.workspaceId, role: principal.role })
        .setProtectedHeader({ alg: ALGORITHM })
        .setSubject(principal.sub)
        .setIssuedAt();
      if (options?.expiresIn) jwt.setExpirationTime(options.expiresIn);
      return jwt.sign(await key);
    },
  };
}
