import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * CORS for the API doors: a browser page from an allowed origin (`--cors-origin`) may call
 * /trpc and /api/v1 with its token in the Authorization header. No cookies are involved, so
 * credentials are never allowed. Answers a preflight itself (returns true: nothing more to do).
 */
export function applyCors(req: IncomingMessage, res: ServerResponse, allowed: readonly string[]): boolean {
  const origin = req.headers.origin;
  if (!origin || !(allowed.includes("*") || allowed.includes(origin))) return false;
  res.setHeader("access-control-allow-origin", allowed.includes("*") ? "*" : origin);
  res.setHeader("vary", "origin");
  if (req.method !== "OPTIONS") return false;
  res
    .writeHead(204, {
      "access-control-allow-methods": "GET, POST, PATCH, DELETE, OPTIONS",
      "access-control-allow-headers": req.headers["access-control-request-headers"] ?? "authorization, content-type",
      "access-control-max-age": "600",
    })
    .end();
  return true;
}
