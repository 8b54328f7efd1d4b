/** Stands in for the `ws` package in the browser build (see vite.config.ts). */
export default globalThis.WebSocket;
