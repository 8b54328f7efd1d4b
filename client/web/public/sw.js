// The board's service worker: the page loads without a network too (a message written then
// waits in the SDK's outbox until the connection is back). Network first, so a new build
// is picked up at once; the cache answers only what the network cannot. The API doors are
// never cached: they are the server's to answer.
const CACHE = "turnqueue-board";
const DOORS = /^\/(trpc|api|yjs|local-token|healthz|readyz|metrics)(\/|$)/;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || DOORS.test(url.pathname)) return;
  // Every page of the board is the same document (threads are in the hash).
  const key = request.mode === "navigate" ? "/" : request;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
        }
        return response;
      })
      .catch(async () => (await caches.match(key, { ignoreSearch: true })) ?? Response.error()),
  );
});
