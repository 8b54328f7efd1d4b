import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { Agent } from "../../client/agent.js";
import { startEchoAgent } from "../../client/echo-agent.js";
import { createTurnqueueClient } from "../../client/index.js";
import { startTestServer, type TestServer } from "../support/server.js";

const CHROMIUM = inject("chromiumPath");
const FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"];
const LONG = { timeout: 40_000 };

/**
 * Offline enqueue as a user meets it: the board was opened once (its service worker kept
 * the page), the network goes away, two messages are written, the page is reloaded while
 * still offline (served by the service worker, the messages kept in IndexedDB), and when
 * the network comes back both reach the agent once, in the order written.
 */
describe.skipIf(!CHROMIUM)("offline enqueue on the web board (real server, real browser, real agent SDK)", { timeout: 180_000 }, () => {
  let server: TestServer;
  let browser: Browser;
  let agent: Agent | null = null;

  beforeAll(async () => {
    server = await startTestServer();
    browser = await chromium.launch({ executablePath: CHROMIUM!, headless: true, args: FLAGS });
  });
  afterAll(async () => {
    await agent?.close();
    await browser?.close();
    await server?.close();
  });

  it("two messages queued offline survive a reload offline and reach the agent once each, in order, when the network is back", async () => {
    const owner = createTurnqueueClient({ url: server.url, token: await server.token("user", "offline", "ann") });
    const { threadId } = await owner.thread.create.mutate({ title: "on a train" });
    const echoed: string[] = [];
    agent = startEchoAgent({ url: server.url, token: await server.token("agent", "offline", "echo"), delayMs: 50, echo: (_, d) => echoed.push(d.message.text) });

    const context = await browser.newContext();
    const token = await server.token("user", "offline", "ann");
    await context.addInitScript((t) => localStorage.setItem("turnqueue.token", t), token);
    const page = await context.newPage();
    page.on("pageerror", (error) => console.error("page error:", error));
    await page.goto(`${server.url}/#/thread/${encodeURIComponent(threadId)}`);
    await expect.poll(() => page.getByTestId("connection").textContent(), LONG).toBe("live");
    // The service worker controls the page and the board's files are cached.
    await expect.poll(() => page.evaluate(async () => !!navigator.serviceWorker.controller && (await (await caches.open("turnqueue-board")).keys()).length > 1), LONG).toBe(true);

    await context.setOffline(true);
    await expect.poll(() => page.getByTestId("connection").textContent(), LONG).not.toBe("live");
    for (const text of ["first, written offline", "second, written offline"]) {
      await page.getByLabel("New message").fill(text);
      await page.getByRole("button", { name: "Queue", exact: true }).click();
    }
    const waiting = () => page.locator("[data-testid=outbox] li").allTextContents();
    await expect.poll(waiting, LONG).toEqual(["first, written offlinewaiting for connection", "second, written offlinewaiting for connection"]);

    await page.reload();
    await expect.poll(waiting, LONG).toEqual(["first, written offlinewaiting for connection", "second, written offlinewaiting for connection"]);
    expect(echoed).toEqual([]);

    await context.setOffline(false);
    await expect.poll(() => echoed, LONG).toEqual(["first, written offline", "second, written offline"]);
    await expect.poll(waiting, LONG).toEqual([]);
    // Each reached the agent once: one item, one dispatch, one sent message per message written.
    const log = await server.services.store.readThread(threadId, 0);
    expect(log.filter((e) => e.type === "queue.item-added").map((e) => e.type === "queue.item-added" && e.payload.text)).toEqual([
      "first, written offline",
      "second, written offline",
    ]);
    expect(log.filter((e) => e.type === "queue.item-send-started")).toHaveLength(2);
    expect(log.filter((e) => e.type === "message.sent")).toHaveLength(2);
    expect(echoed).toHaveLength(2);
    await context.close();
    await owner.close();
  });
});
