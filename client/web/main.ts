import { createTurnqueueClient, type TurnqueueClient } from "../index.js";
import { Board } from "./board.js";
import { liveRegion } from "./announce.js";
import { h, reportTo } from "./dom.js";
import { identityOf, initialToken, localToken, saveToken, signOut } from "./session.js";
import { ThreadList } from "./thread-list.js";

const app = document.getElementById("app")!;

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
  // A person's clicks, a call now and then: HTTP, which the page's own tools show; the live
  // queue's document has its own socket already.
  const client = createTurnqueueClient({ url: location.origin, token, calls: "http" });
  const listError = h("p", { class: "error", role: "alert", hidden: true });
  const main = h("main", { class: "content", id: "content", tabindex: -1 });
  let board: Board | null = null;

  try {
    // The token is checked once here, so a refused one leads back to the sign-in page.
    await client.thread.list.query({ limit: 1 });
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
  const threads = new ThreadList(client, reportTo(listError));
  threads.onChange((summary, threadId) => {
    if (!board || threadId !== threadInUrl()) return;
    if (summary) board.threadChanged(summary);
  });

  // On a phone the thread list folds away behind one button while a thread is open.
  const toggle = h("button", { type: "button", class: "secondary threads-toggle", "aria-expanded": "false", "aria-controls": "sidebar" }, "Threads");
  const sidebar = h("aside", { class: "sidebar", id: "sidebar", "aria-label": "Threads" });
  const showThreads = (open: boolean) => {
    sidebar.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
  };
  toggle.addEventListener("click", () => showThreads(!sidebar.classList.contains("open")));

  const route = () => {
    board?.destroy();
    board = null;
    const threadId = threadInUrl();
    threads.setActive(threadId);
    showThreads(!threadId);
    if (!threadId) {
      main.replaceChildren(h("p", { class: "placeholder" }, "Pick a thread, or start a new one."));
      return;
    }
    board = new Board(client, threadId, identity?.sub ?? "someone");
    const known = threads.get(threadId);
    if (known) board.threadChanged(known);
    main.replaceChildren(board.element);
  };

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
          .then(({ threadId }) => {
            title.value = "";
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
    board?.destroy();
    threads.close();
    void client.close();
    signOut();
    location.hash = "";
    showSignIn(null);
  };

  sidebar.append(create, listError, threads.element);
  app.replaceChildren(
    // Not a fragment link: the fragment names the open thread.
    h("a", { class: "skip", href: "#content", onclick: (e: Event) => (e.preventDefault(), main.focus()) }, "Skip to the board"),
    h("header", { class: "topbar" },
      h("span", { class: "brand" }, "Turnqueue"),
      toggle,
      h("span", { class: "who", "data-testid": "who" }, identity ? `${identity.sub} · ${identity.workspace}` : "signed in"),
      h("button", { type: "button", class: "link", onclick: leave }, "Sign out"),
    ),
    h("div", { class: "layout" }, sidebar, main),
    liveRegion,
  );
  window.onhashchange = route;
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
