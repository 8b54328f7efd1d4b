import { createTurnqueueClient, type TurnqueueClient } from "../index.js";
import { Board } from "./board.js";
import { h, reportTo } from "./dom.js";
import { identityOf, initialToken, localToken, saveToken, signOut } from "./session.js";

const app = document.getElementById("app")!;
const LIST_REFRESH_MS = 10_000;

/** `#/thread/<id>` names the open thread, so a link or a reload lands on the same board. */
const threadInUrl = (): string | null => {
  const match = /^#\/thread\/(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
};

const isUnauthorized = (error: unknown) =>
  (error as { data?: { code?: string } } | null)?.data?.code === "UNAUTHORIZED";

async function start(): Promise<void> {
  const token = await initialToken();
  if (token) await signedIn(token);
  else showSignIn(null);
}

function showSignIn(problem: string | null): void {
  const field = h("textarea", { name: "token", rows: 4, placeholder: "eyJhbGciOiJIUzI1NiJ9…", "aria-label": "Token", required: true });
  const error = h("p", { class: "error", role: "alert", hidden: !problem }, problem ?? "");
  const local = h("button", { type: "button", class: "secondary", hidden: true }, "Continue as the local user");
  localToken().then((token) => {
    if (!token) return;
    local.hidden = false;
    local.onclick = () => enter(token);
  });
  const enter = (token: string) => {
    saveToken(token);
    signedIn(token).catch(reportTo(error));
  };
  app.replaceChildren(
    h("main", { class: "sign-in" },
      h("h1", {}, "Turnqueue"),
      h("p", {}, "Sign in with a token: ", h("code", {}, "turnqueue token --workspace W --role user"), "."),
      h("form", { onsubmit: (e: Event) => (e.preventDefault(), enter(field.value.trim())) },
        field,
        h("div", { class: "row" }, h("button", { type: "submit" }, "Sign in"), local),
      ),
      error,
    ),
  );
}

async function signedIn(token: string): Promise<void> {
  const identity = identityOf(token);
  const client = createTurnqueueClient({ url: location.origin, token });
  const list = h("ul", { class: "thread-list", "aria-label": "Threads" });
  const listError = h("p", { class: "error", role: "alert", hidden: true });
  const main = h("main", { class: "content" });
  let board: Board | null = null;

  const refresh = async () => {
    const { items } = await client.thread.list.query({ limit: 100 });
    const open = threadInUrl();
    list.replaceChildren(
      ...items.map((t) =>
        h("li", {},
          h("a", { href: `#/thread/${encodeURIComponent(t.threadId)}`, class: t.threadId === open ? "active" : null, "data-thread": t.threadId },
            h("span", { class: "thread-title" }, t.title || t.threadId),
            t.queueLength > 0 && h("span", { class: "count", title: `${t.queueLength} queued` }, String(t.queueLength)),
          ),
        ),
      ),
    );
    return items;
  };

  const route = () => {
    board?.destroy();
    board = null;
    const threadId = threadInUrl();
    for (const a of list.querySelectorAll<HTMLAnchorElement>("a")) a.classList.toggle("active", a.dataset.thread === threadId);
    if (!threadId) {
      main.replaceChildren(h("p", { class: "placeholder" }, "Pick a thread, or start a new one."));
      return;
    }
    board = new Board(client, threadId, identity?.sub ?? "someone");
    main.replaceChildren(board.element);
  };

  try {
    await refresh();
  } catch (error) {
    if (isUnauthorized(error)) {
      await client.close();
      signOut();
      showSignIn("That token was refused. Check it was issued by this server and for role user or admin.");
      return;
    }
    // Offline (or the server away): the board opens all the same, since what is written
    // now waits in the outbox; the list comes back with the network.
    reportTo(listError)(error);
  }

  const title = h("input", { name: "title", placeholder: "New thread title", "aria-label": "New thread title", maxlength: 512 });
  const create = h(
    "form",
    {
      class: "new-thread",
      onsubmit: (e: Event) => {
        e.preventDefault();
        listError.hidden = true;
        client.thread.create
          .mutate({ title: title.value.trim() || undefined })
          .then(async ({ threadId }) => {
            title.value = "";
            await refresh();
            location.hash = `#/thread/${encodeURIComponent(threadId)}`;
          })
          .catch(reportTo(listError));
      },
    },
    title,
    h("button", { type: "submit" }, "New"),
  );
  const leave = () => {
    window.onhashchange = null;
    window.onfocus = null;
    clearInterval(poll);
    board?.destroy();
    void client.close();
    signOut();
    location.hash = "";
    showSignIn(null);
  };

  app.replaceChildren(
    h("header", { class: "topbar" },
      h("span", { class: "brand" }, "Turnqueue"),
      h("span", { class: "who", "data-testid": "who" }, identity ? `${identity.sub} · ${identity.workspace}` : "signed in"),
      h("button", { type: "button", class: "link", onclick: leave }, "Sign out"),
    ),
    h("div", { class: "layout" }, h("aside", { class: "sidebar" }, create, listError, list), main),
  );
  window.onhashchange = route;
  // Threads others create, and queue lengths, without a subscription per thread.
  const poll = setInterval(() => document.visibilityState === "visible" && void refresh().catch(reportTo(listError)), LIST_REFRESH_MS);
  window.onfocus = () => void refresh().catch(reportTo(listError));
  route();
}

/**
 * The board loads offline too: the service worker answers from this cache what the network
 * cannot. The files of this very load are put in it now, since the worker only sees the
 * requests of the loads after it started.
 */
function keepForOffline(): void {
  if (!("serviceWorker" in navigator) || typeof caches === "undefined") return;
  navigator.serviceWorker.register("/sw.js").catch(() => {});
  const files = [...document.querySelectorAll<HTMLScriptElement | HTMLLinkElement>("script[src], link[rel=stylesheet], link[rel=modulepreload]")]
    .map((el) => ("src" in el ? el.src : el.href));
  caches.open("turnqueue-board").then((cache) => cache.addAll(["/", ...files])).catch(() => {});
}
keepForOffline();

start().catch((error) => {
  app.replaceChildren(h("p", { class: "error", role: "alert" }, `Turnqueue could not start: ${(error as Error).message}`));
});
