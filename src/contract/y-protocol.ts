/**
 * Message types of the y-websocket protocol (what y-websocket's `WebsocketProvider` speaks):
 * every message starts with one of these as a varUint. Shared by the server and the SDK.
 */
export const MESSAGE_SYNC = 0;
export const MESSAGE_AWARENESS = 1;
export const MESSAGE_QUERY_AWARENESS = 3;
