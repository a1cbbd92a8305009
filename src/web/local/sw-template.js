/* global self, caches, fetch, Response, URL, __PRECACHE__ */
/* HematoVision's service worker: keeps the app, the on-device runtime and the model for offline use.
 * Written into the build by vite.config.ts (offlinePlugin), which fills in the file list and its version. */
const CACHE = 'hematovision-__VERSION__';
const PRECACHE = __PRECACHE__;

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(PRECACHE))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys.filter((k) => k.startsWith('hematovision-') && k !== CACHE).map((k) => caches.delete(k)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  // The API is never cached: cases and predictions are the server's, live.
  if (request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/'))
    return;
  // Network first (a new build or model is picked up at once), the cached copy when the network is off.
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (
          response.ok &&
          (request.mode === 'navigate' ||
            url.pathname.includes('/assets/') ||
            url.pathname.includes('/models/'))
        ) {
          const copy = response.clone();
          void caches
            .open(CACHE)
            .then((cache) => cache.put(request.mode === 'navigate' ? './' : request, copy));
        }
        return response;
      })
      .catch(() =>
        caches
          .match(request.mode === 'navigate' ? './' : request, { ignoreSearch: true })
          .then((hit) => hit ?? Response.error()),
      ),
  );
});
