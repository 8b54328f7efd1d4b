import { Command } from "commander";
import { describeFailure, withClient, withRemote, type RemoteOptions } from "./remote.js";
import { packageVersion } from "../version.js";

/**
 * `turnqueue mcp`: Turnqueue's queue tools as an MCP server over stdio, for an agent that
 * starts it as a subprocess. stdout carries only the protocol.
 */
export function mcpCommand(): Command {
  return withRemote(new Command("mcp").description("serve the queue tools over MCP on stdin/stdout (for agents)")).action((options: RemoteOptions) =>
    // The same token, URL and failure handling as every command over a running server.
    withClient(options, async (client) => {
      const [{ StdioServerTransport }, { createQueueMcpServer }] = await Promise.all([
        import("@modelcontextprotocol/sdk/server/stdio.js"),
        import("../mcp/queue-tools.js"),
      ]);
      // The same one line the other commands print: stable reason code first, never the token.
      const server = createQueueMcpServer(client, packageVersion(), (error) => describeFailure(error, options.url).message);
      // The agent ends the session by closing our stdin.
      const closed = new Promise<void>((resolve) => (server.server.onclose = resolve));
      process.stdin.once("end", () => void server.close());
      await server.connect(new StdioServerTransport());
      await closed;
    }),
  );
}
