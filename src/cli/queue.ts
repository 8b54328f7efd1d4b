import { randomUUID } from "node:crypto";
import { ExitCode } from "../exit-codes.js";
import { Command } from "commander";
import type { TurnqueueClient } from "../../client/index.js";
import { CommandFailure, print, withClient, withRemote, type RemoteOptions } from "./remote.js";

type Snapshot = Awaited<ReturnType<TurnqueueClient["thread"]["get"]["query"]>>;

/** A queue as an operator reads it: one line for the thread, one per item in order. */
function describeQueue(snapshot: Snapshot): string[] {
  const { queue, session } = snapshot;
  const state = queue.paused ? `paused (${queue.pauseReason ?? "user"})` : "running";
  return [
    `${snapshot.threadId}\t${snapshot.title}\tv${snapshot.version}\tsession ${session.status}\tqueue ${state}, ${queue.items.length} item(s)`,
    ...queue.items.map((item, i) =>
      [`${i + 1}.`, item.queueItemId, item.status, item.failureReason ? `(${item.failureReason})` : "", JSON.stringify(item.text)].filter(Boolean).join("\t"),
    ),
  ];
}

type ItemCommand = "remove" | "retry" | "sendNow";
type Delivery = Parameters<TurnqueueClient["queue"]["setDelivery"]["mutate"]>[0]["delivery"];
type Mode = Parameters<TurnqueueClient["queue"]["setMode"]["mutate"]>[0]["mode"];

/**
 * `turnqueue queue …`: read and change one thread's queue over a running server. Each change
 * is one tRPC mutation of the SDK's client; `--command-id` makes a retried change a no-op.
 */
export function queueCommand(): Command {
  const queue = new Command("queue").description("show and change a thread's queue (over a running server)");
  const change = (command: Command) => withRemote(command).option("--command-id <id>", "idempotency key: a retry with the same id changes nothing twice");

  withRemote(queue.command("show").description("the queue in order, with each item's status").argument("<threadId>")).action(
    (threadId: string, options: RemoteOptions) =>
      withClient(options, async (client) => {
        const snapshot = await client.thread.get.query({ threadId });
        print(options, snapshot, () => describeQueue(snapshot));
      }),
  );

  change(
    queue
      .command("add")
      .description("queue a message at the tail (or steer it into the running turn, or interrupt the turn for it, with --delivery)")
      .argument("<threadId>")
      .argument("<text>")
      .option("--message-id <id>", "the message's idempotency key (default: a new UUID)")
      .option("--delivery <delivery>", "queue (wait for its turn), steer (into the running turn, or next) or interrupt (stop the turn, then go first)")
      .option("--author-name <name>", "the name shown as who queued it"),
  ).action((threadId: string, text: string, options: RemoteOptions & { messageId?: string; delivery?: Delivery; authorName?: string; commandId?: string }) =>
    withClient(options, async (client) => {
      const added = await client.queue.add.mutate({
        threadId,
        commandId: options.commandId,
        message: { messageId: options.messageId ?? randomUUID(), text },
        delivery: options.delivery,
        authorName: options.authorName,
      });
      print(options, added, () => [`${added.queueItemId}\t${added.status}`]);
    }),
  );

  change(queue.command("edit").description("replace an item's text").argument("<threadId>").argument("<queueItemId>").argument("<text>")).action(
    (threadId: string, queueItemId: string, text: string, options: RemoteOptions & { commandId?: string }) =>
      withClient(options, async (client) => {
        const result = await client.queue.edit.mutate({ threadId, queueItemId, text, commandId: options.commandId });
        print(options, result, () => [`edited ${queueItemId} (thread v${result.version})`]);
      }),
  );

  change(
    queue
      .command("move")
      .description("move an item after another (--after) or to the head (--to-head)")
      .argument("<threadId>")
      .argument("<queueItemId>")
      .option("--after <queueItemId>", "the item it goes after")
      .option("--to-head", "to the head of the queue"),
  ).action((threadId: string, queueItemId: string, options: RemoteOptions & { after?: string; toHead?: boolean; commandId?: string }) =>
    withClient(options, async (client) => {
      if ((options.after === undefined) === !options.toHead) throw new CommandFailure("say where: --after <queueItemId> or --to-head (one of them)", ExitCode.badSetting);
      const result = await client.queue.move.mutate({ threadId, queueItemId, afterId: options.after ?? null, commandId: options.commandId });
      print(options, result, () => [`moved ${queueItemId} ${options.after ? `after ${options.after}` : "to the head"} (thread v${result.version})`]);
    }),
  );

  const itemCommands: [name: string, procedure: ItemCommand, description: string, done: string][] = [
    ["remove", "remove", "remove an item from the queue", "removed"],
    ["retry", "retry", "queue a failed item again", "queued again"],
    ["send-now", "sendNow", "send an item next, before the rest of the queue", "sending next"],
  ];
  for (const [name, procedure, description, done] of itemCommands) {
    change(queue.command(name).description(description).argument("<threadId>").argument("<queueItemId>")).action(
      (threadId: string, queueItemId: string, options: RemoteOptions & { commandId?: string }) =>
        withClient(options, async (client) => {
          const result = await client.queue[procedure].mutate({ threadId, queueItemId, commandId: options.commandId });
          print(options, result, () => [`${done}: ${queueItemId} (thread v${result.version})`]);
        }),
    );
  }

  change(queue.command("set-mode").description("auto: drain turn after turn; step: hold after each turn until resumed").argument("<threadId>").argument("<mode>")).action(
    (threadId: string, mode: Mode, options: RemoteOptions & { commandId?: string }) =>
      withClient(options, async (client) => {
        const result = await client.queue.setMode.mutate({ threadId, mode, commandId: options.commandId });
        print(options, result, () => [`mode ${mode}: ${threadId} (thread v${result.version})`]);
      }),
  );

  withRemote(queue.command("status").description("what became of a message: queued, sending, sent, failed, removed or unknown").argument("<threadId>").argument("<messageId>")).action(
    (threadId: string, messageId: string, options: RemoteOptions) =>
      withClient(options, async (client) => {
        const status = await client.queue.status.query({ threadId, messageId });
        print(options, status, () => [Object.values(status).join("\t")]);
      }),
  );

  for (const [name, done] of [["pause", "paused"], ["resume", "resumed"]] as const) {
    change(queue.command(name).description(name === "pause" ? "hold the queue: nothing more is sent" : "let the queue drain again").argument("<threadId>")).action(
      (threadId: string, options: RemoteOptions & { commandId?: string }) =>
        withClient(options, async (client) => {
          const result = await client.queue[name].mutate({ threadId, commandId: options.commandId });
          print(options, result, () => [`${done} ${threadId} (thread v${result.version})`]);
        }),
    );
  }
  return queue;
}
