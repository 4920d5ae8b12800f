// The page's service worker: keeps the page's own files so that after one visit it opens with
// the network off (models are kept by model-cache.js). Network first, so a newer build is
// picked up whenever the server answers; the kept copy when it does not. Other requests (models,
// a hearth server's API) are not touched.
const CACHE = 'hearth-page';
const FILES = ['./', 'index.html', 'style.css', 'app.js', 'hearth.js', 'engine-worker.js', 'model-cache.js', 'model-source.js', 'range-reader.js',
  'pkg/hearth_web.js', 'pkg/hearth_web_bg.wasm'];

const scope = () => new URL(self.registration.scope);
const isPageFile = (url) => url.origin === scope().origin
  && FILES.some((file) => new URL(file, scope()).pathname === url.pathname);

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  if (event.request.method !== 'GET' || !isPageFile(new URL(event.request.url))) return;
  event.respondWith(fromNetworkOrKept(event.request));
});

async function fromNetworkOrKept(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (e) {
    const kept = await cache.match(request, { ignoreSearch: true });
    if (kept) return kept;
    throw e;
  }
}
