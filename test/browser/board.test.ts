import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runAgent, TurnStartError, type Agent } from "../../client/agent.js";
import { startEchoAgent } from "../../client/echo-agent.js";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import { startTestServer, type TestServer } from "../support/server.js";

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const artifacts = root("test-artifacts/browser");

/** The system's Chromium, found (or installed) by the global setup; no browser download. */
const CHROMIUM = inject("chromiumPath");
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];

const LONG = { timeout: 30_000 };

// Each test drives two or three browser profiles on a shared two-core machine: a roomy ceiling.
describe.skipIf(!CHROMIUM)("the web queue board in Chromium (real server, real browser)", { timeout: 120_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const clients: TurnqueueClient[] = [];
  const agents: Agent[] = [];

  beforeAll(async () => {
    await mkdir(artifacts, { recursive: true });
    server = await startTestServer();
    browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: FLAGS });
  });
  afterAll(async () => {
    for (const agent of agents) await agent.close();
    for (const context of contexts) await context.close();
    await browser?.close();
    for (const client of clients) await client.close();
    await server?.close();
  });

  async function sdk(workspace: string, sub: string): Promise<TurnqueueClient> {
    const client = createTurnqueueClient({ url: server.url, token: await server.token("user", workspace, sub) });
    clients.push(client);
    return client;
  }

  /** A browser profile of its own (a separate device), signed in with a token, on one thread. */
  async function device(workspace: string, sub: string, threadId: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
    contexts.push(context);
    const token = await server.token("user", workspace, sub);
    await context.addInitScript((t) => localStorage.setItem("turnqueue.token", t), token);
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`[${sub}] page error:`, error));
    await page.goto(`${server.url}/#/thread/${encodeURIComponent(threadId)}`);
    await expect.poll(() => page.getByTestId("connection").textContent(), LONG).toBe("live");
    return page;
  }

  const order = (page: Page) => page.locator("li.item").evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.id));
  const textOf = (page: Page, id: string) => page.locator(`li.item[data-id="${id}"] textarea`).inputValue();
  const shot = (page: Page, name: string) => page.screenshot({ path: `${artifacts}/${name}.png`, fullPage: true });

  it("opens signed in for the local user on the embedded default, lists and creates threads", async () => {
    const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(server.url);
    await expect.poll(() => page.getByTestId("who").textContent(), LONG).toBe("local · local");

    await page.getByLabel("New thread title").fill("Port the parser to Rust");
    await page.getByRole("button", { name: "New" }).click();
    await expect.poll(() => page.locator("h1.title").textContent(), LONG).toBe("Port the parser to Rust");
    await expect.poll(() => page.locator(".thread-list a.active .thread-title").textContent()).toBe("Port the parser to Rust");

    await page.getByLabel("New message").fill("Start with the tokenizer");
    await page.getByRole("button", { name: "Queue", exact: true }).click();
    await expect.poll(() => page.locator("li.item .chip.status").allTextContents(), LONG).toEqual(["queued"]);
    expect(await page.locator("li.item textarea").inputValue()).toBe("Start with the tokenizer");
    await shot(page, "local-user-new-thread");

    await page.goto(`${server.url}/#/thread/no-such-thread`);
    await expect.poll(() => page.locator("main [role=alert]").textContent(), LONG).toBe('There is no thread "no-such-thread" here.');
  });

  it("a refused token leads to the sign-in page, where a good token signs in", async () => {
    const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
    contexts.push(context);
    await context.addInitScript(() => {
      if (!sessionStorage.getItem("seeded")) {
        sessionStorage.setItem("seeded", "1");
        localStorage.setItem("turnqueue.token", "not-a-token");
      }
    });
    const page = await context.newPage();
    await page.goto(server.url);
    await expect.poll(() => page.getByRole("alert").textContent(), LONG).toContain("That token was refused");
    await page.getByLabel("Token").fill(await server.token("user", "signin", "grace"));
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByTestId("who").textContent(), LONG).toBe("grace · signin");
    await shot(page, "signed-in");

    await page.getByRole("button", { name: "Sign out" }).click();
    await expect.poll(() => page.getByRole("button", { name: "Continue as the local user" }).isVisible(), LONG).toBe(true);
    await page.reload();
    // A deliberate sign-out sticks: the local user is offered, not imposed.
    await expect.poll(() => page.getByRole("button", { name: "Sign in" }).isVisible(), LONG).toBe(true);
    await page.getByRole("button", { name: "Continue as the local user" }).click();
    await expect.poll(() => page.getByTestId("who").textContent(), LONG).toBe("local · local");
  });

  it("a drag in one browser reorders the queue in the other, and each sees the other looking", async () => {
    const alice = await sdk("board", "alice");
    const { threadId } = await alice.thread.create.mutate({ title: "Release 2.0" });
    const ids: string[] = [];
    for (const text of ["Bump the version", "Write the changelog", "Tag the release"]) {
      ids.push((await alice.queue.add.mutate({ threadId, message: { messageId: text, text } })).queueItemId);
    }
    const [a, b] = [await device("board", "alice", threadId), await device("board", "bob", threadId)];
    await expect.poll(() => order(b), LONG).toEqual(ids);
    await expect.poll(() => b.locator('[data-testid="peers"] li').getAttribute("title"), LONG).toBe("alice is looking");
    await expect.poll(() => a.locator('[data-testid="peers"] li').getAttribute("title"), LONG).toBe("bob is looking");

    // Bob is typing in "Tag the release" when Alice moves it: he keeps his place.
    await b.locator(`li.item[data-id="${ids[2]}"] textarea`).click();
    await b.keyboard.press("End");

    // Drop "Tag the release" on the upper half of the first item: it becomes the head.
    await a.locator(`li.item[data-id="${ids[2]}"] .handle`).dragTo(a.locator(`li.item[data-id="${ids[0]}"]`), { targetPosition: { x: 40, y: 4 } });
    const moved = [ids[2], ids[0], ids[1]];
    await expect.poll(() => order(a), LONG).toEqual(moved);
    await expect.poll(() => order(b), LONG).toEqual(moved);
    await b.keyboard.type(" v2.0");
    await expect.poll(() => textOf(a, ids[2]), LONG).toBe("Tag the release v2.0");

    // The keyboard reorders too: the handle of the last item, ↑.
    await a.locator(`li.item[data-id="${ids[1]}"] .handle`).focus();
    await a.keyboard.press("ArrowUp");
    const reordered = [ids[2], ids[1], ids[0]];
    await expect.poll(() => order(b), LONG).toEqual(reordered);
    // Dropped on the upper half of the middle item: between the first two.
    await a.locator(`li.item[data-id="${ids[0]}"] .handle`).dragTo(a.locator(`li.item[data-id="${ids[1]}"]`), { targetPosition: { x: 40, y: 4 } });
    await expect.poll(() => order(b), LONG).toEqual(moved);
    // The move is in the log, not only in the documents.
    await expect.poll(async () => (await alice.thread.get.query({ threadId })).queue.items.map((i) => i.queueItemId), LONG).toEqual(moved);
    await shot(a, "drag-alice");
    await shot(b, "drag-bob");
  });

  it("two people typing in one item at once end with both edits, and see who is typing", async () => {
    const carol = await sdk("typing", "carol");
    const { threadId } = await carol.thread.create.mutate({ title: "Parser" });
    const { queueItemId } = await carol.queue.add.mutate({ threadId, message: { messageId: "m1", text: "fix the parser" } });
    const [a, b] = [await device("typing", "carol", threadId), await device("typing", "dave", threadId)];
    const field = (page: Page) => page.locator(`li.item[data-id="${queueItemId}"] textarea`);
    await expect.poll(() => textOf(b, queueItemId), LONG).toBe("fix the parser");

    await field(a).click();
    await a.keyboard.press("End");
    await field(b).click();
    await b.keyboard.press("Home");
    await expect.poll(() => a.locator(`li.item[data-id="${queueItemId}"] .editors`).textContent(), LONG).toBe("dave is typing…");
    await Promise.all([a.keyboard.type(" and add tests", { delay: 15 }), b.keyboard.type("please ", { delay: 15 })]);

    const merged = "please fix the parser and add tests";
    await expect.poll(() => textOf(a, queueItemId), LONG).toBe(merged);
    await expect.poll(() => textOf(b, queueItemId), LONG).toBe(merged);
    await expect.poll(async () => (await carol.thread.get.query({ threadId })).queue.items[0]?.text, LONG).toBe(merged);
    await shot(a, "typing-carol");
    await shot(b, "typing-dave");
  });

  it("a failed item shows its reason, and Retry sends it", async () => {
    const erin = await sdk("failing", "erin");
    const { threadId } = await erin.thread.create.mutate({ title: "Flaky model" });
    const page = await device("failing", "erin", threadId);
    const attempts: string[] = [];
    // The second attempt holds its turn start until the test has seen the item `sending`.
    let startSecond!: () => void;
    const secondMayStart = new Promise<void>((resolve) => (startSecond = resolve));
    agents.push(
      runAgent({
        url: server.url,
        token: await server.token("agent", "failing", "runner"),
        autoReady: true,
        async onTurn(turn) {
          attempts.push(turn.dispatch.queueItemId);
          if (attempts.length === 1) throw new TurnStartError("model quota exhausted", { retryable: false });
          await secondMayStart;
          await turn.start();
          return { outcome: "completed" };
        },
      }),
    );
    await expect.poll(() => page.getByTestId("session").textContent(), LONG).toBe("agent ready");

    await page.getByLabel("New message").fill("Summarize the failing tests");
    await page.getByLabel("New message").press("Control+Enter");
    const item = page.locator("li.item");
    await expect.poll(() => item.locator(".chip.status").textContent(), LONG).toBe("failed");
    expect(await item.locator(".reason").textContent()).toBe("model quota exhausted");
    expect(await page.getByTestId("paused").textContent()).toBe("paused (failure)");
    await shot(page, "failed-item");

    await item.getByRole("button", { name: "Retry" }).click();
    await expect.poll(() => item.locator(".chip.status").textContent(), LONG).toBe("sending");
    expect(await item.locator(".reason").isHidden()).toBe(true);
    expect(await item.locator("textarea").getAttribute("readonly")).not.toBeNull();
    expect(await item.getByRole("button", { name: "Remove" }).isDisabled()).toBe(true);
    await shot(page, "sending-item");
    // A device that opens the thread now sees the item being sent, too.
    const late = await device("failing", "erin", threadId);
    await expect.poll(() => late.locator("li.item .chip.status").textContent(), LONG).toBe("sending");
    startSecond();
    await expect.poll(() => item.count(), LONG).toBe(0);
    expect(attempts).toHaveLength(2);
    expect(new Set(attempts).size).toBe(1);
    expect(await page.getByTestId("paused").isHidden()).toBe(true);
    await shot(page, "failed-item-retried");
  });

  it("the queue drains live, in order, as the echo agent works through it", async () => {
    const frank = await sdk("echo", "frank");
    const { threadId } = await frank.thread.create.mutate({ title: "Echo" });
    const page = await device("echo", "frank", threadId);
    await page.getByRole("button", { name: "Pause" }).click();
    await expect.poll(() => page.getByTestId("paused").textContent(), LONG).toBe("paused");

    const texts = ["Read the issue", "Write a failing test", "Make it pass"];
    for (const text of texts) {
      await page.getByLabel("New message").fill(text);
      await page.getByRole("button", { name: "Queue", exact: true }).click();
      await expect.poll(() => page.locator("li.item").count(), LONG).toBe(texts.indexOf(text) + 1);
    }
    const ids = await order(page);
    // Record, in the page, the order in which items leave the list.
    await page.evaluate(() => {
      const gone: string[] = [];
      (window as unknown as { gone: string[] }).gone = gone;
      new MutationObserver((records) => {
        for (const r of records) for (const n of r.removedNodes) if (n instanceof HTMLElement && n.matches("li.item") && !n.isConnected) gone.push(n.dataset.id!);
      }).observe(document.querySelector("ol.queue")!, { childList: true });
    });

    const echoed: string[] = [];
    agents.push(
      startEchoAgent({ url: server.url, token: await server.token("agent", "echo", "echo"), delayMs: 400, echo: (_, d) => echoed.push(d.message.text) }),
    );
    await expect.poll(() => page.getByTestId("session").textContent(), LONG).toBe("agent ready");
    expect(await page.locator("li.item").count()).toBe(3);
    await shot(page, "echo-before-resume");
    await page.setViewportSize({ width: 390, height: 760 });
    await shot(page, "echo-before-resume-phone");
    await page.setViewportSize({ width: 1180, height: 760 });

    // Steer (send now) jumps the paused queue with one chosen item; Resume drains the rest in order.
    await page.locator(`li.item[data-id="${ids[2]}"]`).getByLabel("Delivery").selectOption("steer");
    await expect.poll(() => echoed, LONG).toEqual([texts[2]]);
    await expect.poll(() => order(page), LONG).toEqual(ids.slice(0, 2));
    await page.getByRole("button", { name: "Resume" }).click();
    await expect.poll(() => page.locator("li.item").count(), LONG).toBeLessThan(2);
    await shot(page, "echo-draining");
    await expect.poll(() => page.locator("li.item").count(), LONG).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { gone: string[] }).gone)).toEqual([ids[2], ids[0], ids[1]]);
    await expect.poll(() => echoed, LONG).toEqual([texts[2], texts[0], texts[1]]);
    await shot(page, "echo-drained");

    // The composer's Send now reaches the agent through a paused queue, too.
    await page.getByRole("button", { name: "Pause" }).click();
    await expect.poll(() => page.getByTestId("paused").textContent(), LONG).toBe("paused");
    await page.getByLabel("New message").fill("One more thing");
    await page.locator('[data-action="send-now-draft"]').click();
    await expect.poll(() => echoed, LONG).toEqual([texts[2], texts[0], texts[1], "One more thing"]);
    expect(await page.getByTestId("paused").textContent()).toBe("paused");
  });

  it("Stop interrupts the turn the agent is working on, and the queue holds (interrupted)", async () => {
    const gina = await sdk("stop", "gina");
    const { threadId } = await gina.thread.create.mutate({ title: "Stop" });
    const page = await device("stop", "gina", threadId);
    // A turn that would work for a minute: only Stop ends it within the test.
    agents.push(startEchoAgent({ url: server.url, token: await server.token("agent", "stop", "echo"), delayMs: 60_000 }));
    await expect.poll(() => page.getByTestId("session").textContent(), LONG).toBe("agent ready");
    const stop = page.getByRole("button", { name: "Stop" });
    expect(await stop.isHidden()).toBe(true);

    await page.getByLabel("New message").fill("Refactor everything");
    await page.getByRole("button", { name: "Queue", exact: true }).click();
    await expect.poll(() => page.getByTestId("session").textContent(), LONG).toBe("agent working");
    await shot(page, "stop-while-working");
    await stop.click();
    await expect.poll(() => page.getByTestId("paused").textContent(), LONG).toBe("paused (interrupted)");
    await expect.poll(() => page.getByTestId("session").textContent(), LONG).toBe("agent ready");
    expect(await stop.isHidden()).toBe(true);
    // The log says the same: the one turn ended interrupted.
    const ended = (await server.services.store.readThread(threadId, 0)).flatMap((e) => (e.type === "turn.ended" ? [e.payload.outcome] : []));
    expect(ended).toEqual(["interrupted"]);
  });
});
