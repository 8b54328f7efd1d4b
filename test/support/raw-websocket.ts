import { randomBytes } from "node:crypto";
import net from "node:net";

/**
 * A WebSocket client written by hand over a TCP socket, for sending what no library sends:
 * unmasked frames, reserved bits, lying length headers. It reads the server's frames and
 * reports the close frame (code and reason) or the socket's end.
 */
export interface RawWebSocket {
  /** Writes bytes as they are (a frame built with `frame`, or anything else). */
  write(bytes: Uint8Array): void;
  /** Binary messages the server sent, in order. */
  readonly messages: Buffer[];
  /** Text messages the server sent, in order. */
  readonly texts: string[];
  /** The server's close frame, or null when the connection ended without one. */
  readonly closed: Promise<{ code: number; reason: string } | null>;
  destroy(): void;
}

/** Opens `path` (with its query) on the server at `httpUrl`; rejects unless the answer is 101. */
export function openRawWebSocket(httpUrl: string, path: string): Promise<RawWebSocket> {
  const { hostname, port } = new URL(httpUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    const messages: Buffer[] = [];
    const texts: string[] = [];
    let settle: (value: { code: number; reason: string } | null) => void = () => {};
    const closed = new Promise<{ code: number; reason: string } | null>((r) => (settle = r));
    // The server may drop the socket while a large write is still going: that is the answer.
    socket.on("error", () => settle(null));
    socket.on("close", () => {
      settle(null);
      if (!upgraded) reject(new Error(`the connection closed before the upgrade: ${buffer.toString("latin1").slice(0, 200)}`));
    });
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end === -1) return;
        const head = buffer.subarray(0, end).toString("latin1");
        buffer = buffer.subarray(end + 4);
        if (!head.startsWith("HTTP/1.1 101")) {
          socket.destroy();
          return reject(new Error(`upgrade refused: ${head.split("\r\n")[0]}`));
        }
        upgraded = true;
        resolve({ write: (bytes) => void socket.write(bytes), messages, texts, closed, destroy: () => socket.destroy() });
      }
      for (;;) {
        const parsed = readFrame(buffer);
        if (!parsed) return;
        buffer = buffer.subarray(parsed.size);
        if (parsed.opcode === 0x8) {
          const payload = parsed.payload;
          settle(payload.length >= 2 ? { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString("utf8") } : { code: 1005, reason: "" });
          socket.end();
        } else if (parsed.opcode === 0x2) messages.push(parsed.payload);
        else if (parsed.opcode === 0x1) texts.push(parsed.payload.toString("utf8"));
      }
    });
    socket.write(
      [
        `GET ${path} HTTP/1.1`,
        `Host: ${hostname}:${port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`,
        "Sec-WebSocket-Version: 13",
        "",
        "",
      ].join("\r\n"),
    );
  });
}

/** One server frame (unmasked, as servers send them) at the start of `buffer`, if complete. */
function readFrame(buffer: Buffer): { opcode: number; payload: Buffer; size: number } | null {
  if (buffer.length < 2) return null;
  let length = buffer[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = buffer.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(buffer.readBigUInt64BE(2));
    offset = 10;
  }
  if (buffer.length < offset + length) return null;
  return { opcode: buffer[0] & 0x0f, payload: buffer.subarray(offset, offset + length), size: offset + length };
}

export interface FrameOptions {
  fin?: boolean;
  /** RSV1..RSV3 as bits 0b100, 0b010, 0b001. */
  rsv?: number;
  opcode?: number;
  /** Clients must mask; false sends the payload in the clear. */
  masked?: boolean;
  /** The length the header claims, when it should lie. */
  claimedLength?: number;
}

/** A client frame: opcode 2 (binary), final, masked unless told otherwise. */
export function frame(payload: Uint8Array, options: FrameOptions = {}): Buffer {
  const { fin = true, rsv = 0, opcode = 0x2, masked = true } = options;
  const length = options.claimedLength ?? payload.length;
  const header: number[] = [(fin ? 0x80 : 0) | ((rsv & 0b111) << 4) | (opcode & 0x0f)];
  const maskBit = masked ? 0x80 : 0;
  let extended = Buffer.alloc(0);
  if (length < 126) header.push(maskBit | length);
  else if (length < 0x10000) {
    header.push(maskBit | 126);
    extended = Buffer.alloc(2);
    extended.writeUInt16BE(length);
  } else {
    header.push(maskBit | 127);
    extended = Buffer.alloc(8);
    extended.writeBigUInt64BE(BigInt(length));
  }
  if (!masked) return Buffer.concat([Buffer.from(header), extended, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4];
  return Buffer.concat([Buffer.from(header), extended, key, body]);
}
