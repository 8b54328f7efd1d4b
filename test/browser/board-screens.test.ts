import { mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { AxeBuilder } from "@axe-core/playwright";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { runAgent, TurnStartError, type Agent } from "../../client/agent.js";
import { createTurnqueueClient, type TurnqueueClient } from "../../client/index.js";
import { connect, type Client } from "../support/clients.js";
import { startTestServer, type TestServer } from "../support/server.js";

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));
/** Every screen, at both sizes, for people to look at (not compared: a test asserts behaviour). */
const screens = root("test-artifacts/browser/screens");

const CHROMIUM = inject("chromiumPath");
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const LONG = { timeout: 30_000 };
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const LONG_TITLE = "Migrate the billing service from the legacy cron scheduler to the new queue workers, with a rollback plan";
const LONG_TEXT =
  "Please read through the whole failing integration suite, group the failures by root cause, and for each group write down which " +
  "module owns it, what the smallest fix would be, and whether it needs a migration; then open one pull request per group, " +
  "starting with the one that unblocks the most tests. Keep the commit messages short. " +
  "https://ci.example.com/builds/2026-12-02/integration/attempt-3/artifacts/junit-report-with-a-very-long-unbroken-path.xml";

describe.skipIf(!CHROMIUM)("the web board on phones, live and accessible (real server, real Chromium)", { timeout: 180_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const clients: TurnqueueClient[] = [];
  const agents: Agent[] = [];
  /** Turns still held when a test ends (it failed): let go, so the agents can close. */
  const held: (() => void)[] = [];

  beforeAll(async () => {
    await mkdir(screens, { recursive: true });
    server = await startTestServer();
    browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: FLAGS });
  });
  afterAll(async () => {
    for (const release of held) release();
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

  /** A device of its own, signed in; a phone is 390×844 with a touch screen. */
  async function device(workspace: string, sub: string, hash: string, size: "desktop" | "phone" = "desktop"): Promise<Page> {
    const phone = size === "phone";
    const context = await browser.newContext({ viewport: phone ? PHONE : DESKTOP, hasTouch: phone, isMobile: phone });
    contexts.push(context);
    const token = await server.token("user", workspace, sub);
    await context.addInitScript((t) => localStorage.setItem("turnqueue.token", t), token);
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error(`[${sub}] page error:`, error));
    await page.goto(`${server.url}/${hash}`);
    await expect.poll(() => page.getByTestId("who").textContent(), LONG).toBe(`${sub} · ${workspace}`);
    return page;
  }

  async function openThread(workspace: string, sub: string, threadId: string, size: "desktop" | "phone" = "desktop"): Promise<Page> {
    const page = await device(workspace, sub, `#/thread/${encodeURIComponent(threadId)}`, size);
    await expect.poll(() => page.getByTestId("connection").textContent(), LONG).toBe("live");
    return page;
  }

  /** axe-core's serious and critical findings on the page as it is now (contrast included). */
  async function axeProblems(page: Page): Promise<string[]> {
    const { violations } = await new AxeBuilder({ page }).analyze();
    return violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  }

  /** Saves the screen at the page's size and checks it with axe. */
  async function screen(page: Page, name: string): Promise<void> {
    const size = page.viewportSize()!.width < 500 ? "phone" : "desktop";
    await page.screenshot({ path: `${screens}/${name}-${size}.png`, fullPage: true });
    expect(await axeProblems(page), `${name} at ${size}`).toEqual([]);
  }

  /** Keeps, in the page, everything the live region has said (each message replaces the last). */
  const recordAnnouncements = (page: Page) =>
    page.evaluate(() => {
      const region = document.querySelector("[data-testid=announcer]")!;
      const said: string[] = [];
      (window as unknown as { said: string[] }).said = said;
      new MutationObserver(() => region.textContent && said.push(region.textContent)).observe(region, { childList: true, characterData: true, subtree: true });
    });
  const said = (page: Page) => page.evaluate(() => (window as unknown as { said: string[] }).said.join(" | "));

  const overflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

  /** Every shown button (and picker) lies inside the screen's width and takes a tap at its centre (nothing covers it). */
  async function everyButtonUsable(page: Page): Promise<string[]> {
    const buttons = page.locator("button:visible, [role=button]:visible, select:visible");
    const names: string[] = [];
    for (let i = 0; i < (await buttons.count()); i++) {
      const button = buttons.nth(i);
      await button.scrollIntoViewIfNeeded();
      const box = (await button.boundingBox())!;
      const name = (await button.getAttribute("data-action")) ?? (await button.textContent()) ?? "?";
      expect(box.x, name).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width, name).toBeLessThanOrEqual(page.viewportSize()!.width);
      // Playwright's own checks: visible, stable, enabled, and the element receives the tap.
      if (await button.isEnabled()) await button.click({ trial: true, timeout: 5_000 });
      names.push(name);
    }
    return names;
  }

  /**
   * An agent on the workspace: `Break…` messages fail to start; `Hold…` runs until released;
   * `Flaky…` fails its first start attempt (retryable) and waits for the release before the
   * second. Steers are taken.
   */
  async function agentFor(workspace: string) {
    let release!: () => void;
    let hold = new Promise<void>((resolve) => (release = resolve));
    held.push(() => release());
    const tried = new Set<string>();
    agents.push(
      runAgent({
        url: server.url,
        token: await server.token("agent", workspace, "runner"),
        autoReady: true,
        async onSteer() {},
        async onTurn(turn) {
          const text = turn.dispatch.message.text;
          if (text.startsWith("Break")) throw new TurnStartError("model quota exhausted", { retryable: false });
          if (text.startsWith("Flaky")) {
            if (!tried.has(text)) {
              tried.add(text);
              throw new TurnStartError("agent busy", { retryable: true });
            }
            await hold;
          }
          await turn.start();
          await turn.session("codex-thread-0193a7");
          if (text.startsWith("Crash")) return { outcome: "failed", error: "the model stopped answering" };
          // Held until released, or until the user stops the turn (it then ends interrupted).
          if (text.startsWith("Hold")) await Promise.race([hold, new Promise((stopped) => turn.interrupt.addEventListener("abort", stopped, { once: true }))]);
          return { outcome: turn.interrupt.aborted ? "interrupted" : "completed" };
        },
      }),
    );
    return {
      release: () => {
        release();
        hold = new Promise<void>((resolve) => (release = resolve));
      },
    };
  }

  it("at 390×844, with many threads and long texts, nothing is wider than the screen and every button takes a tap", async () => {
    const ws = "phone";
    const me = await sdk(ws, "hana");
    for (let i = 0; i < 18; i++) await me.thread.create.mutate({ title: i % 3 === 0 ? `${LONG_TITLE} (${i})` : `Chore ${i}` });
    const twins = [(await me.thread.create.mutate({ title: "Nightly chores" })).threadId, (await me.thread.create.mutate({ title: "Nightly chores" })).threadId];
    const { threadId } = await me.thread.create.mutate({ title: LONG_TITLE });
    await agentFor(ws);
    const add = (text: string) => me.queue.add.mutate({ threadId, message: { messageId: text.slice(0, 40), text } });
    await add(`Sent first: ${LONG_TEXT}`);
    await expect.poll(async () => (await me.thread.history.query({ threadId })).items.map((e) => e.outcome), LONG).toEqual(["completed"]);
    await add("Break the build on purpose");
    await expect.poll(async () => (await me.thread.get.query({ threadId })).queue.pauseReason, LONG).toBe("failure");
    await add(LONG_TEXT);
    await add(`Then: ${"x".repeat(300)}`);
    await add("Tag the release");

    const page = await openThread(ws, "hana", threadId, "phone");
    await expect.poll(() => page.locator("li.item").count(), LONG).toBe(4);
    await expect.poll(() => page.locator("li.sent").count(), LONG).toBe(1);
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    const actions = await everyButtonUsable(page);
    for (const action of ["rename", "archive", "delete", "resume", "step-mode", "send-now-draft", "retry", "delivery", "remove"]) expect(actions).toContain(action);
    expect(await page.locator("li.item .attempts").first().textContent()).toBe("after 1 attempt");
    await screen(page, "board-failed-long");

    // The thread list folds behind one button on a phone; open, it fits too.
    await page.getByRole("button", { name: "Threads" }).click();
    await expect.poll(() => page.locator(".thread-list a").count(), LONG).toBe(21);
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    await everyButtonUsable(page);
    // Two threads of one title: each shows the end of its id and when it was made.
    const twinLines = await Promise.all(twins.map((id) => page.locator(`a[data-thread="${id}"] [data-testid=twin]`).textContent()));
    expect(twinLines[0]).not.toBe(twinLines[1]);
    expect(await page.locator(`a[data-thread="${threadId}"] .mark`).allTextContents()).toEqual(["1 failed", "paused: failure"]);
    await screen(page, "thread-list");

    await page.getByRole("button", { name: "Threads" }).click();
    await page.getByRole("button", { name: "Rename" }).click();
    await expect.poll(() => page.getByRole("dialog").isVisible(), LONG).toBe(true);
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    await screen(page, "rename-dialog");
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect(await page.getByRole("dialog").count()).toBe(0);
  });

  it("a long press and a drag on a touch screen reorders the queue", async () => {
    const ws = "touch";
    const me = await sdk(ws, "ines");
    const { threadId } = await me.thread.create.mutate({ title: "Touch" });
    await me.queue.pause.mutate({ threadId });
    const ids: string[] = [];
    for (const text of ["Bump the version", "Write the changelog", "Tag the release"]) {
      ids.push((await me.queue.add.mutate({ threadId, message: { messageId: text, text } })).queueItemId);
    }
    const page = await openThread(ws, "ines", threadId, "phone");
    await expect.poll(() => page.locator("li.item").count(), LONG).toBe(3);

    const centre = async (selector: string, dy = 0.5) => {
      const box = (await page.locator(selector).boundingBox())!;
      return { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height * dy) };
    };
    const from = await centre(`li.item[data-id="${ids[2]}"] .handle`);
    const to = await centre(`li.item[data-id="${ids[0]}"]`, 0.2);
    const cdp = await page.context().newCDPSession(page);
    const touch = (type: string, at?: { x: number; y: number }) =>
      cdp.send("Input.dispatchTouchEvent", { type: type as "touchStart", touchPoints: at ? [{ x: at.x, y: at.y }] : [] });

    // A quick swipe over the handle is not a drag: nothing moves.
    await touch("touchStart", from);
    await touch("touchMove", { x: from.x, y: from.y - 40 });
    await touch("touchEnd");
    await page.waitForTimeout(600);
    expect((await me.thread.get.query({ threadId })).queue.items.map((i) => i.queueItemId)).toEqual(ids);

    // Rest the finger (the long press), then drag to the top of the first item.
    await touch("touchStart", from);
    await page.waitForTimeout(600);
    expect(await page.locator(`li.item[data-id="${ids[2]}"]`).getAttribute("class")).toContain("dragging");
    for (let step = 1; step <= 6; step++) await touch("touchMove", { x: from.x, y: Math.round(from.y + ((to.y - from.y) * step) / 6) });
    await touch("touchEnd");
    const moved = [ids[2], ids[0], ids[1]];
    await expect.poll(async () => (await me.thread.get.query({ threadId })).queue.items.map((i) => i.queueItemId), LONG).toEqual(moved);
    await expect.poll(() => page.locator("li.item").evaluateAll((els) => els.map((el) => (el as HTMLElement).dataset.id)), LONG).toEqual(moved);
  });

  it("the running turn shows on top with the agent's session, and the history shows each turn's outcome and time, paged", async () => {
    const ws = "history";
    const me = await sdk(ws, "jun");
    const { threadId } = await me.thread.create.mutate({ title: "Parser rewrite" });
    const agent = await agentFor(ws);
    for (let i = 1; i <= 21; i++) await me.queue.add.mutate({ threadId, message: { messageId: `m${i}`, text: `Step ${i}` } });
    await me.queue.add.mutate({ threadId, message: { messageId: "crash", text: "Crash while reading the grammar" } });
    await expect.poll(async () => (await me.thread.history.query({ threadId, limit: 30 })).items.map((e) => e.outcome).join(), { timeout: 60_000 })
      .toBe(["failed", ...Array(21).fill("completed")].join());
    // A failed turn holds the queue.
    await expect.poll(async () => (await me.thread.get.query({ threadId })).queue.pauseReason, LONG).toBe("failure");
    await me.queue.resume.mutate({ threadId });

    const page = await openThread(ws, "jun", threadId);
    await expect.poll(() => page.locator("li.sent").count(), LONG).toBe(20);
    expect(await page.locator("li.sent").first().locator(".chip").textContent()).toBe("turn failed");
    expect(await page.locator("li.sent").first().locator(".reason").textContent()).toBe("the model stopped answering");
    expect(await page.locator("li.sent").first().locator(".attempts").textContent()).toBe("1 attempt");
    expect(await page.locator("li.sent").nth(1).locator(".chip").textContent()).toBe("completed");
    expect(await page.locator("li.sent time").first().getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/);
    await page.getByRole("button", { name: "Show older" }).click();
    await expect.poll(() => page.locator("li.sent").count(), LONG).toBe(22);
    expect(await page.getByRole("button", { name: "Show older" }).isHidden()).toBe(true);
    expect(await page.locator("li.sent .sent-text").last().textContent()).toBe("Step 1");

    // A turn starts while the page is open: it shows on top, with its session, then joins the history.
    expect(await page.getByTestId("now").isHidden()).toBe(true);
    await recordAnnouncements(page);
    await page.getByLabel("New message").fill("Hold on and profile the tokenizer");
    await page.getByRole("button", { name: "Queue", exact: true }).click();
    await expect.poll(() => page.getByTestId("now").isVisible(), LONG).toBe(true);
    expect(await page.getByTestId("now").locator(".sent-text").textContent()).toBe("Hold on and profile the tokenizer");
    await expect.poll(() => page.getByTestId("now").locator(".now-session code").textContent(), LONG).toBe("codex-thread-0193a7");
    expect(await page.getByTestId("now").locator(".now-since").textContent()).toMatch(/^since .+ \(\d+ s\)$/);
    await expect.poll(() => said(page), LONG).toContain("agent working");
    // The running turn shows once: on top, not also in the history below it.
    expect(await page.locator("li.sent", { hasText: "Hold on and profile the tokenizer" }).count()).toBe(0);
    expect(await page.getByText("Hold on and profile the tokenizer", { exact: true }).count()).toBe(1);
    // A message steered into it joins it there, after the one that started it.
    await page.getByLabel("New message").fill("Also time the lexer");
    await page.getByRole("button", { name: "Send now" }).first().click();
    await expect.poll(() => page.getByTestId("now").locator(".sent-text").allTextContents(), LONG)
      .toEqual(["Hold on and profile the tokenizer", "Also time the lexer"]);
    expect(await page.getByTestId("now").locator(".now-note").textContent()).toMatch(/^steered in at /);
    expect(await page.locator("li.sent", { hasText: "Also time the lexer" }).count()).toBe(0);
    await screen(page, "running-and-history");
    await page.setViewportSize(PHONE);
    await screen(page, "running-and-history");
    await page.setViewportSize(DESKTOP);

    agent.release();
    await expect.poll(() => page.getByTestId("now").isHidden(), LONG).toBe(true);
    await expect.poll(() => page.locator("li.sent").first().locator(".chip").textContent(), LONG).toBe("completed");
    expect(await page.locator("li.sent .sent-text").first().textContent()).toBe("Also time the lexer");
    expect(await page.locator("li.sent .sent-text").nth(1).textContent()).toBe("Hold on and profile the tokenizer");
  });

  it("a message tried more than once shows the failed attempt's reason and its attempts in its row, then in its history entry", async () => {
    const ws = "attempts";
    const me = await sdk(ws, "noa");
    const { threadId } = await me.thread.create.mutate({ title: "Flaky agent" });
    const agent = await agentFor(ws);
    const page = await openThread(ws, "noa", threadId, "phone");
    await recordAnnouncements(page);
    await page.getByLabel("New message").fill("Flaky: regenerate the lockfile");
    await page.getByRole("button", { name: "Queue", exact: true }).click();

    // The first start attempt failed and the second waits in the agent: the row says both.
    const row = page.locator("li.item");
    await expect.poll(() => row.locator(".attempts").textContent(), LONG).toBe("attempt 2");
    expect(await row.locator(".reason").textContent()).toBe("agent busy");
    expect(await row.locator(".chip").textContent()).toBe("sending");
    await expect.poll(() => said(page), LONG).toContain("attempt 1 failed: agent busy");
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    await screen(page, "item-retrying");

    agent.release();
    await expect.poll(() => page.locator("li.sent").count(), LONG).toBe(1);
    expect(await page.locator("li.sent .attempts").textContent()).toBe("2 attempts");
    expect(await page.locator("li.sent .chip").textContent()).toBe("completed");
    expect(await row.count()).toBe(0);
    await screen(page, "history-attempts");
    await page.setViewportSize(DESKTOP);
    await screen(page, "history-attempts");
  });

  it("the thread list follows every change live, without polling; threads are renamed, archived and deleted after a confirm", async () => {
    const ws = "live";
    const me = await sdk(ws, "kai");
    const other = await sdk(ws, "lea");
    const { threadId } = await me.thread.create.mutate({ title: "Release 3.0" });
    const page = await openThread(ws, "kai", threadId);
    const watcher = await openThread(ws, "lea", threadId);
    const listCalls: string[] = [];
    page.on("request", (r) => r.url().includes("thread.list") && listCalls.push(r.url()));
    const row = (p: Page, id: string) => p.locator(`.thread-list a[data-thread="${id}"]`);

    // Another device creates a thread and queues onto it: counts and marks arrive by themselves.
    const { threadId: second } = await other.thread.create.mutate({ title: "From another device" });
    await expect.poll(() => row(page, second).locator(".thread-title").textContent(), LONG).toBe("From another device");
    await other.queue.pause.mutate({ threadId: second });
    await other.queue.add.mutate({ threadId: second, message: { messageId: "a", text: "one" } });
    await other.queue.add.mutate({ threadId: second, message: { messageId: "b", text: "two" } });
    await expect.poll(() => row(page, second).locator(".count").textContent(), LONG).toBe("2");
    expect(await row(page, second).locator(".mark").allTextContents()).toEqual(["paused", "no agent"]);
    await other.queue.remove.mutate({ threadId: second, queueItemId: (await other.thread.get.query({ threadId: second })).queue.items[0]!.queueItemId });
    await expect.poll(() => row(page, second).locator(".count").textContent(), LONG).toBe("1");

    // Rename: the dialog, then every device shows the new title.
    await page.getByRole("button", { name: "Rename" }).click();
    await page.getByRole("dialog").getByLabel("Thread title").fill("Release 3.0 (final)");
    await screen(page, "rename-dialog");
    await page.getByRole("dialog").getByLabel("Thread title").press("Enter");
    await expect.poll(() => page.locator("h1.title").textContent(), LONG).toBe("Release 3.0 (final)");
    await expect.poll(() => watcher.locator("h1.title").textContent(), LONG).toBe("Release 3.0 (final)");
    await expect.poll(() => row(watcher, threadId).locator(".thread-title").textContent(), LONG).toBe("Release 3.0 (final)");
    expect((await me.thread.get.query({ threadId })).title).toBe("Release 3.0 (final)");

    // Archive asks first; cancelled, nothing changes.
    await page.getByRole("button", { name: "Archive" }).click();
    await screen(page, "archive-dialog");
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect((await me.thread.get.query({ threadId })).archived).toBe(false);
    await page.getByRole("button", { name: "Archive" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Archive" }).click();
    await expect.poll(() => row(watcher, threadId).locator(".mark").allTextContents(), LONG).toContain("archived");
    await expect.poll(() => page.getByTestId("archived").isVisible(), LONG).toBe(true);
    expect((await me.thread.get.query({ threadId })).archived).toBe(true);

    // Delete asks first, then the thread is gone from every device's list.
    await page.getByRole("button", { name: "Delete" }).click();
    await screen(page, "delete-dialog");
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect(await row(page, threadId).count()).toBe(1);
    await page.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete" }).click();
    await expect.poll(() => row(watcher, threadId).count(), LONG).toBe(0);
    await expect.poll(() => page.locator(".placeholder").first().textContent(), LONG).toBe("Pick a thread, or start a new one.");
    expect(await row(page, threadId).count()).toBe(0);
    await screen(page, "thread-list");
    // Everything above came over the subscription: the page never asked for the list again.
    expect(listCalls).toEqual([]);
  });

  it("every action is reachable by keyboard, and status changes are announced to screen readers", async () => {
    const ws = "keys";
    const me = await sdk(ws, "mo");
    const { threadId } = await me.thread.create.mutate({ title: "Keyboard" });
    await me.queue.pause.mutate({ threadId });
    const ids: string[] = [];
    for (const text of ["First", "Second"]) ids.push((await me.queue.add.mutate({ threadId, message: { messageId: text, text } })).queueItemId);
    const page = await openThread(ws, "mo", threadId);
    await expect.poll(() => page.locator("li.item").count(), LONG).toBe(2);

    // Tab from the top of the page: every control comes up in turn.
    const reached = new Set<string>();
    await page.locator("body").focus();
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press("Tab");
      reached.add(await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return el?.dataset.action ?? el?.getAttribute("aria-label") ?? el?.textContent?.trim() ?? "";
      }));
    }
    for (const control of ["New thread title", "New", "Sign out", "rename", "archive", "delete", "resume", "step-mode", "New message", "Queue", "send-now-draft", "Reorder", "Message text", "delivery", "remove"]) {
      expect([...reached], control).toContain(control);
    }

    // Work the queue by keyboard alone: reorder, resume, and hear what happened.
    await recordAnnouncements(page);
    await page.locator(`li.item[data-id="${ids[1]}"] .handle`).focus();
    await page.keyboard.press("ArrowUp");
    await expect.poll(async () => (await me.thread.get.query({ threadId })).queue.items.map((i) => i.queueItemId), LONG).toEqual([ids[1], ids[0]]);
    await page.locator('[data-action="resume"]').focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => said(page), LONG).toContain("queue running");
    expect(await page.getByTestId("announcer").getAttribute("aria-live")).toBe("polite");
    await page.locator(`li.item[data-id="${ids[0]}"] [data-action="remove"]`).focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator("li.item").count(), LONG).toBe(1);
    await page.getByRole("button", { name: "Pause" }).press("Enter");
    await expect.poll(() => said(page), LONG).toContain("queue paused");
    await screen(page, "board-queue");
    await page.setViewportSize(PHONE);
    await screen(page, "board-queue");
  });

  it("the queue-semantics controls: each item's delivery, step mode and Next, who queued each item, the rate-limit countdown — at both sizes, announced", async () => {
    const ws = "semantics";
    const me = await sdk(ws, "omar");
    const pia = await sdk(ws, "pia");
    const { threadId } = await me.thread.create.mutate({ title: "Queue semantics" });
    const agent = await agentFor(ws);
    const page = await openThread(ws, "omar", threadId);
    await recordAnnouncements(page);
    const row = (id: string) => page.locator(`li.item[data-id="${id}"]`);
    const sent = () => page.locator("li.sent").evaluateAll((els) => els.map((el) => [el.querySelector(".sent-text")!.textContent, el.querySelector(".chip")!.textContent]));

    // Two people queue behind a running turn: each item says who queued it.
    await me.queue.add.mutate({ threadId, message: { messageId: "hold", text: "Hold the migration until the backup is verified" } });
    await expect.poll(() => page.getByTestId("now").isVisible(), LONG).toBe(true);
    const second = (await me.queue.add.mutate({ threadId, message: { messageId: "second", text: "Then rerun the billing tests" } })).queueItemId;
    const urgent = (await pia.queue.add.mutate({ threadId, message: { messageId: "urgent", text: "Stop: the backup target is the production bucket" } })).queueItemId;
    await expect.poll(() => page.locator("li.item").count(), LONG).toBe(2);
    expect(await row(second).locator(".author").textContent()).toBe("by you");
    expect(await row(urgent).locator(".author").textContent()).toBe("by pia");
    expect(await row(urgent).getByLabel("Delivery").inputValue()).toBe("queue");
    await screen(page, "delivery-and-authors");
    await page.setViewportSize(PHONE);
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    expect(await everyButtonUsable(page)).toEqual(expect.arrayContaining(["delivery", "step-mode", "stop"]));
    await screen(page, "delivery-and-authors");
    await page.setViewportSize(DESKTOP);

    // Pia's item set to interrupt: the running turn stops and it goes first, then the rest in order.
    await row(urgent).getByLabel("Delivery").selectOption("interrupt");
    await expect.poll(() => said(page), LONG).toContain("item set to interrupt");
    await expect.poll(sent, LONG).toEqual([
      ["Then rerun the billing tests", "completed"],
      ["Stop: the backup target is the production bucket", "completed"],
      ["Hold the migration until the backup is verified", "stopped"],
    ]);

    // Step mode, switched on by keyboard: after each turn the queue waits for Next.
    await page.locator('[data-action="step-mode"]').focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.locator('[data-action="step-mode"]').getAttribute("aria-pressed"), LONG).toBe("true");
    await expect.poll(() => said(page), LONG).toContain("step mode on");
    await me.queue.add.mutate({ threadId, message: { messageId: "step-a", text: "Step A: bump the schema version" } });
    const stepB = (await me.queue.add.mutate({ threadId, message: { messageId: "step-b", text: "Step B: regenerate the client" } })).queueItemId;
    await expect.poll(() => page.getByTestId("paused").textContent(), LONG).toBe("step: waiting for Next");
    expect(await page.getByRole("button", { name: "Next" }).isVisible()).toBe(true);
    expect(await row(stepB).locator(".chip").textContent()).toBe("queued");
    await expect.poll(() => said(page), LONG).toContain("turn done: the queue waits for Next");
    await screen(page, "step-hold");
    await page.setViewportSize(PHONE);
    expect(await overflow(page)).toBeLessThanOrEqual(0);
    await screen(page, "step-hold");
    await page.setViewportSize(DESKTOP);
    await page.getByRole("button", { name: "Next" }).focus();
    await page.keyboard.press("Enter");
    await expect.poll(async () => (await sent())[0], LONG).toEqual(["Step B: regenerate the client", "completed"]);
    await expect.poll(() => page.getByTestId("paused").textContent(), LONG).toBe("step: waiting for Next");

    // Step mode off lets the held queue go; then the agent reports a rate limit: the board counts down to its end.
    await page.locator('[data-action="step-mode"]').click();
    await expect.poll(() => page.getByTestId("paused").isHidden(), LONG).toBe(true);
    expect(await said(page)).toMatch(/step mode off.*queue running/);
    const runtime: Client = connect(server, await server.token("agent", ws, "runner"));
    try {
      const retryAt = new Date(Date.now() + 5 * 60_000).toISOString();
      await runtime.agent.session.mutate({ threadId, status: "rate-limited", retryAt });
      await expect.poll(() => page.getByTestId("resume-at").isVisible(), LONG).toBe(true);
      expect(await page.getByTestId("resume-at").locator("time").getAttribute("datetime")).toBe(retryAt);
      expect(await page.getByTestId("resume-at").textContent()).toMatch(/^resumes at .+ \(in [45]:\d\d\)$/);
      expect(await page.getByTestId("paused").textContent()).toBe("paused (rate limit)");
      await expect.poll(() => said(page), LONG).toMatch(/agent rate limited: the queue resumes at /);
      await screen(page, "rate-limited");
      await page.setViewportSize(PHONE);
      expect(await overflow(page)).toBeLessThanOrEqual(0);
      await screen(page, "rate-limited");
      // A person may end the hold before its time.
      await page.getByRole("button", { name: "Resume" }).click();
      await expect.poll(() => page.getByTestId("resume-at").isHidden(), LONG).toBe(true);
    } finally {
      await runtime.close();
    }
    agent.release();
  });

  it("the sign-in page and an empty workspace pass axe at both sizes", async () => {
    const context = await browser.newContext({ viewport: PHONE });
    contexts.push(context);
    await context.addInitScript(() => localStorage.setItem("turnqueue.token", ""));
    const page = await context.newPage();
    await page.goto(server.url);
    await expect.poll(() => page.getByRole("button", { name: "Sign in" }).isVisible(), LONG).toBe(true);
    await screen(page, "sign-in");
    await page.setViewportSize(DESKTOP);
    await screen(page, "sign-in");

    const empty = await device("empty", "nia", "");
    await expect.poll(() => empty.locator(".thread-list").textContent(), LONG).toBe("No threads yet.");
    await screen(empty, "empty-workspace");
    await empty.setViewportSize(PHONE);
    await screen(empty, "empty-workspace");
  });
});
