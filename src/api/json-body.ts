import type { IncomingMessage } from "node:http";
import { TRPCError } from "@trpc/server";

/**
 * A request's JSON body, read up to `maxBytes` (the --max-body-bytes limit of every door):
 * counted while it streams in, so an oversized body is refused at the limit, not read whole.
 * An empty body is `{}`.
 */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new TRPCError({ code: "PAYLOAD_TOO_LARGE", message: `the body is over ${maxBytes} bytes` });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new TRPCError({ code: "PARSE_ERROR", message: "the body is not JSON" });
  }
}
