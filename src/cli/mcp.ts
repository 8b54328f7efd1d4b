import { Command } from "commander";
import { ExitCode } from "../exit-codes.js";
import { createTurnqueueClient } from "../../client/index.js";
import { CommandFailure, withRemote, type RemoteOptions } from "./remote.js";
import { packageVersion } from "./version.js";

/**
 * `turnqueue mcp`: Turnqueue's queue tools as an MCP server over stdio, for an agent that
 * starts it as a subprocess. stdout carries only the protocol.
 */
export function mcpCommand(): Command {
  return withRemote(new Command("mcp").description("serve the queue tools over MCP on stdin/stdout (for agents)")).action(async (options: RemoteOptions) => {
    if (!options.token) throw new CommandFailure("a token is required: --token or TURNQUEUE_TOKEN (turnqueue token --workspace W --role user)", ExitCode.tokenRefused);
    const [{ StdioServerTransport }, { createQueueMcpServer }] = await Promise.all([
      import("@modelcontextprotocol/sdk/server/stdio.js"),
      import("../mcp/queue-tools.js"),
    ]);
    const client = createTurnqueueClient({ url: options.url, token: options.token });
    const server = createQueueMcpServer(client, packageVersion());
    const transport = new StdioServerTransport();
    // The agent ends the session by closing our stdin.
    const closed = new Promise<void>((resolve) => (server.server.onclose = resolve));
    process.stdin.once("end", () => void server.close());
    await server.connect(transport);
    await closed;
    await client.close();
  });
}
