// The y-websocket reference server (@y/websocket-server), in memory, as `npx y-websocket` runs it:
// the floor a Yjs relay can reach. Prints the URL it serves once listening.
import http from "node:http";
import { WebSocketServer } from "ws";
import { setupWSConnection } from "@y/websocket-server/utils";

const server = http.createServer((_req, res) => res.writeHead(200).end("ok"));
const wss = new WebSocketServer({ noServer: true });
wss.on("connection", setupWSConnection);
server.on("upgrade", (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws, req)));
server.listen(0, "127.0.0.1", () => {
  process.stdout.write(`serving ws://127.0.0.1:${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
