import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";

/**
 * What collab puts on the bus's `doc` and `awareness` channels: the publishing instance's id
 * (so an instance ignores its own messages) and the payload (a y-protocols message).
 */
export interface DocFrame {
  origin: string;
  payload: Uint8Array;
}

export function encodeDocMessage(frame: DocFrame): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, frame.origin);
  encoding.writeVarUint8Array(encoder, frame.payload);
  return encoding.toUint8Array(encoder);
}

/** Null for bytes no instance of ours could have published. */
export function decodeDocMessage(bytes: Uint8Array): DocFrame | null {
  try {
    const decoder = decoding.createDecoder(bytes);
    return { origin: decoding.readVarString(decoder), payload: decoding.readVarUint8Array(decoder) };
  } catch {
    return null;
  }
}
