import { Command, InvalidArgumentError } from "commander";
import { print, withClient, withRemote, type RemoteOptions } from "./remote.js";

const limit = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new InvalidArgumentError("--limit must be a whole number from 1 to 200.");
  return n;
};

/** `turnqueue threads list|create`: the token's workspace's threads. */
export function threadsCommand(): Command {
  const threads = new Command("threads").description("threads of the token's workspace (over a running server)");
  withRemote(
    threads
      .command("list")
      .description("list threads, a page at a time")
      .option("--limit <n>", "threads per page (1–200)", limit, 50)
      .option("--cursor <cursor>", "the nextCursor a previous page printed"),
  ).action((options: RemoteOptions & { limit: number; cursor?: string }) =>
    withClient(options, async (client) => {
      const page = await client.thread.list.query({ limit: options.limit, cursor: options.cursor ?? null });
      print(options, page, () => [
        ...page.items.map((t) =>
          [t.threadId, `${t.queueLength} queued${t.paused ? " (paused)" : ""}`, `session ${t.sessionStatus}`, t.archived ? "archived" : "", t.title]
            .filter(Boolean)
            .join("\t"),
        ),
        ...(page.items.length === 0 ? ["(no threads)"] : []),
        ...(page.nextCursor ? [`(more: --cursor ${page.nextCursor})`] : []),
      ]);
    }),
  );
  withRemote(threads.command("create").description("create a thread and print its id").argument("<title>")).action(
    (title: string, options: RemoteOptions) =>
      withClient(options, async (client) => {
        const created = await client.thread.create.mutate({ title });
        print(options, created, () => [created.threadId]);
      }),
  );
  return threads;
}
