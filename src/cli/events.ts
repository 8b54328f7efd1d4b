import { Command } from "commander";
import { ExitCode } from "../exit-codes.js";
import { CommandFailure, describeFailure, withClient, withRemote, type RemoteOptions } from "./remote.js";

/**
 * `turnqueue events <threadId>`: the thread's event log, oldest first; with --follow it
 * stays and prints each new event as it is committed, until SIGINT or SIGTERM.
 */
export function eventsCommand(): Command {
  return withRemote(
    new Command("events")
      .description("print a thread's events (over a running server); --follow keeps printing new ones")
      .argument("<threadId>")
      .option("--follow", "keep printing events as they happen, until interrupted")
      .option("--after <seq>", "start after this event seq (as printed) instead of the beginning"),
  ).action((threadId: string, options: RemoteOptions & { follow?: boolean; after?: string }) =>
    withClient(options, async (client) => {
      // Without --follow the log ends at the thread's version as of now.
      const { version } = await client.thread.get.query({ threadId });
      await new Promise<void>((resolve, reject) => {
        let stopped = false;
        // Settled before unsubscribing: tRPC reports the end of the stream (onComplete) at once.
        const stop = () => {
          stopped = true;
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
          subscription.unsubscribe();
        };
        const subscription = client.thread.events.subscribe(
          { threadId, lastEventId: options.after ?? null },
          {
            onData: ({ data: event }) => {
              process.stdout.write(
                options.json
                  ? `${JSON.stringify(event)}\n`
                  : `${event.seq}\t${event.createdAt}\tv${event.version}\t${event.type}\t${event.actor}\t${JSON.stringify(event.payload)}\n`,
              );
              if (!options.follow && event.version >= version) stop();
            },
            onError: (error) => {
              subscription.unsubscribe();
              reject(describeFailure(error, options.url));
            },
            onComplete: () => (options.follow && !stopped ? reject(new CommandFailure("the server ended the event stream", ExitCode.unavailable)) : resolve()),
          },
        );
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    }),
  );
}
