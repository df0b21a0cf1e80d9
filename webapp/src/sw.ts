/// <reference lib="webworker" />
/**
 * The service worker: keeps the application shell so the webmail starts offline.
 *
 * Only the shell is cached here (index.html and the content-hashed /assets/ files); mail
 * lives in IndexedDB (sync/cache.ts). API and JMAP requests are never cached: they carry a
 * user's data and Cache Storage is not wiped with the same care.
 */
declare const self: ServiceWorkerGlobalScope;

const SHELL_CACHE = "hirondelle-shell-v1";

/** The asset URLs a built index.html refers to (its scripts and style sheets). */
export function shellAssets(html: string): string[] {
  const found = new Set<string>();
  for (const match of html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)) {
    if (match[1]) found.add(match[1]);
  }
  return [...found];
}

async function precache(): Promise<void> {
  const cache = await caches.open(SHELL_CACHE);
  const response = await fetch("/", { cache: "no-cache" });
  if (!response.ok) return;
  const html = await response.clone().text();
  await cache.put("/", response);
  await cache.addAll(shellAssets(html));
}

function isShellNavigation(request: Request): boolean {
  return request.mode === "navigate";
}

if (typeof self !== "undefined" && "registration" in self) {
  self.addEventListener("install", (event) => {
    event.waitUntil(precache().then(() => self.skipWaiting()));
  });
  self.addEventListener("activate", (event) => {
    event.waitUntil(
      caches
        .keys()
        .then((names) => Promise.all(names.filter((n) => n !== SHELL_CACHE).map((n) => caches.delete(n))))
        .then(() => self.clients.claim()),
    );
  });
  self.addEventListener("message", (event) => {
    // Sign-out wipes the shell cache too ("sign-out leaves no cache").
    if (event.data === "purge") event.waitUntil(caches.delete(SHELL_CACHE));
  });
  self.addEventListener("fetch", (event) => {
    const url = new URL(event.request.url);
    if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
    if (url.pathname.startsWith("/assets/")) {
      // Content-hashed: a cached copy is always right.
      event.respondWith(
        caches.match(event.request).then(
          (hit) =>
            hit ??
            fetch(event.request).then(async (response) => {
              if (response.ok) (await caches.open(SHELL_CACHE)).put(event.request, response.clone());
              return response;
            }),
        ),
      );
    } else if (isShellNavigation(event.request)) {
      // Network first so a new build is picked up; the cached shell when offline.
      event.respondWith(
        fetch(event.request).catch(async () => (await caches.match("/")) ?? Response.error()),
      );
    }
  });
}
