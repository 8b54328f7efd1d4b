import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import type { DecodedUpdate } from "./dependencies.js";
import { MESSAGE_AWARENESS, MESSAGE_QUERY_AWARENESS, MESSAGE_SYNC } from "../contract/y-protocol.js";
import { ITEMS, META } from "./schema.js";

/**
 * The y-websocket wire protocol (what `WebsocketProvider` speaks): every message starts with
 * a varUint type; sync messages carry a y-protocols sync message, awareness messages a
 * varUint8Array awareness update. Parsing is total: anything else is a `ProtocolViolation`
 * with the close code and reason the offending connection gets.
 */
export { MESSAGE_AWARENESS, MESSAGE_QUERY_AWARENESS, MESSAGE_SYNC } from "../contract/y-protocol.js";

/** One message (one update) larger than this closes the connection. */
export const MAX_MESSAGE_BYTES = 1 << 20;

/**
 * Awareness client ids one connection may introduce. A y-websocket client has one (its
 * doc's clientID, which Yjs changes only on a rare id clash); the bound keeps a connection
 * from flooding everyone with made-up presences.
 */
export const MAX_AWARENESS_IDS_PER_CONNECTION = 4;

/**
 * Close codes. 4400–4499 tell y-websocket's provider not to reconnect (a deliberate refusal);
 * 1012 (service restart) makes it reconnect. The RFC 6455 codes are what `ws` itself sends
 * (on every door) to a client that breaks the framing, before the server sees a message.
 */
export const CLOSE = {
  /** Unmasked client frame, reserved bits or opcode, bad control frame. */
  protocolError: 1002,
  /** A text frame that is not UTF-8. */
  invalidData: 1007,
  /** A frame longer than the door's maximum payload. */
  frameTooBig: 1009,
  malformed: 4400,
  forbiddenWrite: 4403,
  gone: 4404,
  tooLarge: 4413,
  restarting: 1012,
} as const;

export class ProtocolViolation extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = "ProtocolViolation";
  }
}

export type ClientMessage =
  /** `held`: the state vector decoded (client id → clock). */
  | { type: "sync-step1"; stateVector: Uint8Array; held: Map<number, number> }
  /** `catchUp`: a sync step 2, what the device did while it did not have the server's state (offline). */
  | { type: "update"; update: Uint8Array; decoded: DecodedUpdate; catchUp: boolean }
  | { type: "awareness"; update: Uint8Array; entries: AwarenessEntry[] }
  | { type: "query-awareness" };

export function parseClientMessage(data: Uint8Array): ClientMessage {
  if (data.byteLength > MAX_MESSAGE_BYTES) {
    throw new ProtocolViolation(CLOSE.tooLarge, `message of ${data.byteLength} bytes exceeds the ${MAX_MESSAGE_BYTES}-byte limit`);
  }
  try {
    const decoder = decoding.createDecoder(data);
    const type = decoding.readVarUint(decoder);
    switch (type) {
      case MESSAGE_SYNC:
        return parseSync(decoder);
      case MESSAGE_AWARENESS: {
        const update = decoding.readVarUint8Array(decoder);
        return { type: "awareness", update, entries: parseAwarenessUpdate(update) };
      }
      case MESSAGE_QUERY_AWARENESS:
        return { type: "query-awareness" };
      default:
        throw new ProtocolViolation(CLOSE.malformed, `unknown message type ${type}`);
    }
  } catch (error) {
    if (error instanceof ProtocolViolation) throw error;
    throw new ProtocolViolation(CLOSE.malformed, `malformed message: ${(error as Error).message}`);
  }
}

function parseSync(decoder: decoding.Decoder): ClientMessage {
  const type = decoding.readVarUint(decoder);
  switch (type) {
    case syncProtocol.messageYjsSyncStep1: {
      const stateVector = decoding.readVarUint8Array(decoder);
      return { type: "sync-step1", stateVector, held: Y.decodeStateVector(stateVector) };
    }
    case syncProtocol.messageYjsSyncStep2:
    case syncProtocol.messageYjsUpdate: {
      const update = decoding.readVarUint8Array(decoder);
      return { type: "update", update, decoded: checkUpdate(update), catchUp: type === syncProtocol.messageYjsSyncStep2 };
    }
    default:
      throw new ProtocolViolation(CLOSE.malformed, `unknown sync message type ${type}`);
  }
}

/**
 * Decodes an update fully before it touches a document, so garbage is refused whole; and
 * refuses content for any root type but the two of the schema (no other root may grow).
 */
function checkUpdate(update: Uint8Array): DecodedUpdate {
  const decoded = Y.decodeUpdate(update);
  for (const struct of decoded.structs) {
    if (!(struct instanceof Y.Item)) continue;
    const parent = struct.parent;
    if (typeof parent === "string" && parent !== META && parent !== ITEMS) {
      throw new ProtocolViolation(CLOSE.forbiddenWrite, `writes to "${parent}" are not allowed: the document has only "${META}" and "${ITEMS}"`);
    }
  }
  return decoded;
}

/** One client's entry of an awareness update: its presence as JSON text ("null": gone). */
export interface AwarenessEntry {
  clientId: number;
  clock: number;
  state: string;
}

/** The y-protocols awareness update format, read whole so a bad one changes nothing. */
function parseAwarenessUpdate(update: Uint8Array): AwarenessEntry[] {
  try {
    const decoder = decoding.createDecoder(update);
    const entries: AwarenessEntry[] = [];
    for (let n = decoding.readVarUint(decoder); n > 0; n--) {
      const entry = { clientId: decoding.readVarUint(decoder), clock: decoding.readVarUint(decoder), state: decoding.readVarString(decoder) };
      JSON.parse(entry.state);
      entries.push(entry);
    }
    return entries;
  } catch (error) {
    throw new ProtocolViolation(CLOSE.malformed, `malformed awareness update: ${(error as Error).message}`);
  }
}

/** Some entries of a parsed update, in the same format (y-protocols writes only an Awareness's own states). */
export function encodeAwarenessUpdate(entries: AwarenessEntry[]): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, entries.length);
  for (const { clientId, clock, state } of entries) {
    encoding.writeVarUint(encoder, clientId);
    encoding.writeVarUint(encoder, clock);
    encoding.writeVarString(encoder, state);
  }
  return encoding.toUint8Array(encoder);
}

const message = (write: (encoder: encoding.Encoder) => void): Uint8Array => {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
};

export const syncStep1Message = (doc: Y.Doc) =>
  message((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeSyncStep1(e, doc);
  });

export const syncStep2Message = (doc: Y.Doc, stateVector?: Uint8Array) =>
  message((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeSyncStep2(e, doc, stateVector);
  });

export const updateMessage = (update: Uint8Array) =>
  message((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeUpdate(e, update);
  });

export const awarenessMessage = (update: Uint8Array) =>
  message((e) => {
    encoding.writeVarUint(e, MESSAGE_AWARENESS);
    encoding.writeVarUint8Array(e, update);
  });
