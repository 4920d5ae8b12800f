// Models kept in this browser (Cache Storage), so that after the first download a model loads
// from disk, also with the network off. Each is kept under its absolute URL; a file picked from
// the computer is not kept (it is on disk already). A download is kept while it streams into
// the engine, and when the site's storage cannot hold it the caller is told how much it needs
// and what to free, instead of failing or keeping nothing silently.
import { fileName, resolveModelUrl } from './model-source.js';

const CACHE = 'hearth-models';
const BYTES = 'x-hearth-bytes';
const SAVED_AT = 'x-hearth-saved-at';

const available = () => 'caches' in globalThis;

export const megabytes = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;

/** The key a model is kept under: the absolute URL its address means. */
export function modelKey(source) {
  return resolveModelUrl(source, location.href);
}

/** The kept response for `url`, or null. */
export async function keptModel(url) {
  if (!available()) return null;
  return (await (await caches.open(CACHE)).match(url)) ?? null;
}

/** Every kept model: {url, name, bytes, savedAt}, newest first. */
export async function listModels() {
  if (!available()) return [];
  const cache = await caches.open(CACHE);
  const models = [];
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    if (!response) continue;
    const bytes = Number(response.headers.get(BYTES)) || (await response.blob()).size;
    models.push({ url: request.url, name: fileName(request.url), bytes, savedAt: response.headers.get(SAVED_AT) });
  }
  return models.sort((a, b) => String(b.savedAt).localeCompare(String(a.savedAt)));
}

/** Forgets a kept model; whether there was one. */
export async function deleteModel(url) {
  if (!available()) return false;
  return (await caches.open(CACHE)).delete(modelKey(url));
}

/** What this site stores and may store: {usage, quota} in bytes (null where unknown). */
export async function storageUse() {
  const estimate = await navigator.storage?.estimate?.().catch(() => null);
  return { usage: estimate?.usage ?? null, quota: estimate?.quota ?? null };
}

function notKept(needed, free) {
  const room = `this site may store ${megabytes(Math.max(free, 0))} more in this browser`;
  return `not kept for next time: ${needed ? `it needs ${megabytes(needed)} and ${room}` : `it did not fit: ${room}`}. ` +
    'Delete kept models you no longer use, or free disk space, and load it again to keep it.';
}

/** Why a download of `total` bytes (0: unknown) cannot be kept in this browser, or null when
 * there is room to try. */
export async function whyNotKept(total) {
  if (!available()) return 'this browser keeps no files for this page';
  const { usage, quota } = await storageUse();
  if (total && quota !== null && usage !== null && total > quota - usage) return notKept(total, quota - usage);
  return null;
}

/**
 * Keeps the download `response` of `total` bytes (0: unknown) under `url` while the engine reads
 * it (`whyNotKept` having found room). Returns the body for the engine and a promise of
 * {kept, why}: the quota may still run out while the copy is written.
 */
export async function keepWhileReading(url, response, total) {
  const [body, copy] = response.body.tee();
  const headers = { 'content-type': 'application/octet-stream', [SAVED_AT]: new Date().toISOString() };
  if (total) headers[BYTES] = String(total);
  const cache = await caches.open(CACHE);
  const saved = cache.put(url, new Response(copy, { headers })).then(
    () => {
      // Ask the browser not to evict kept models under storage pressure (it may decline).
      navigator.storage?.persist?.().catch(() => {});
      return { kept: true };
    },
    async (e) => {
      if (e?.name !== 'QuotaExceededError') return { kept: false, why: `not kept for next time: ${e?.message ?? e}` };
      const { usage: now, quota: limit } = await storageUse();
      return { kept: false, why: notKept(total, (limit ?? 0) - (now ?? 0)) };
    },
  );
  return { body, saved };
}
