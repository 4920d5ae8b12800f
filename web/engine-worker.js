// hearth's engine in a (module) Web Worker: the wasm module, the WebGPU device, reading the model
// file (from the network, this browser's kept copy or a picked file) and every generation step
// run here, so that the page stays responsive while a model loads or a prompt is processed.
// hearth.js talks to it by messages:
//
//   page → worker  {id, name, args}        name: open, adapterInfo, load, generate, reset
//                  {name: 'cancel', args: {target}}   ends the generation `target`
//   worker → page  {id, event}             a load's progress, a generation's tokens
//                  {id, result} | {id, error}
//
// Calls run one at a time in the order they came; a load, generate or reset arriving ends the
// generation running before it at its next token.
import init, { openEngine } from './pkg/hearth_web.js';
import { deleteModel, keepWhileReading, keptModel, whyNotKept } from './model-cache.js';
import { fileName } from './model-source.js';
import { rangeReader } from './range-reader.js';

let engine = null;
let queue = Promise.resolve();
let generation = 0;
const cancelled = new Set();

function exclusive(work) {
  const run = queue.then(work);
  queue = run.catch(() => {});
  return run;
}

function opened() {
  if (!engine) throw new Error('the engine is not open yet');
  return engine;
}

/** Where the model's bytes come from: a Blob to read a range at a time (a picked file, or a
 * kept copy), a download's address to read a range at a time (`ranged`: a server that answers
 * ranges, when the file is not being kept), or a download's stream (held whole, or kept while it
 * is read: `copying`): {blob | ranged | stream, total, name, from, copying, saved, abort}. */
async function openSource(source, keep) {
  if (source instanceof Blob) return { blob: source, total: source.size, name: source.name ?? 'model.gguf', from: 'file' };
  const url = source;
  const name = fileName(url);
  const kept = await keptModel(url);
  if (kept) {
    const blob = await kept.blob();
    return { blob, total: blob.size, name, from: 'cache' };
  }
  const abort = new AbortController();
  // Its first byte asked for: a server that answers ranges says the file's length with it.
  let response = await download(url, abort, { range: 'bytes=0-0' });
  const ranged = response.status === 206 ? rangedLength(response) : 0;
  if (response.status === 206 && !ranged) response = await again(url, abort, response);
  const total = ranged || downloadLength(response);
  const why = keep ? await whyNotKept(total) : null;
  const saved = Promise.resolve({ kept: false, ...(why ? { why } : {}) });
  if (ranged && (!keep || why)) {
    response.body?.cancel().catch(() => {});
    return { ranged: url, total, name, from: 'network', saved, abort };
  }
  if (ranged) response = await again(url, abort, response);
  if (keep && !why) {
    const copy = await keepWhileReading(url, response, total);
    return { stream: copy.body, total, name, from: 'network', copying: true, saved: copy.saved, abort };
  }
  return { stream: response.body, total, name, from: 'network', saved, abort };
}

async function download(url, abort, headers = {}) {
  let response;
  try {
    response = await fetch(url, { signal: abort.signal, headers });
  } catch (e) {
    throw new Error(`could not fetch ${url} (${e.message ?? e}: offline, or a site that does not let other pages ` +
      'read its files), and it is not kept in this browser');
  }
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  return response;
}

/** The whole file, `first` (an answer to a range) dropped. */
function again(url, abort, first) {
  first.body?.cancel().catch(() => {});
  return download(url, abort);
}

/** The file's length from an answer to a range ("bytes 0-0/LENGTH"), 0 when it does not say
 * (a cross-origin server that does not expose Content-Range). */
function rangedLength(response) {
  return Number(/^bytes\s+\d+-\d+\/(\d+)\s*$/i.exec(response.headers.get('content-range') ?? '')?.[1]) || 0;
}

/** A whole download's length (0: unknown; a compressed response's Content-Length counts
 * compressed bytes). */
function downloadLength(response) {
  return response.headers.get('content-encoding') ? 0 : Number(response.headers.get('content-length')) || 0;
}

/** What a range-at-a-time load tells `progress`: the bytes read so far. */
function readProgress(total, from, progress) {
  let loaded = 0;
  return (bytes) => {
    loaded = Math.min(total, loaded + bytes);
    progress({ phase: 'read', loaded, total, from });
  };
}

/** Reads `blob` a range at a time, synchronously (FileReaderSync: this is a worker). */
function blobReader(blob, told) {
  const reader = new FileReaderSync();
  return (offset, len) => {
    let bytes;
    try {
      bytes = new Uint8Array(reader.readAsArrayBuffer(blob.slice(offset, offset + len)));
    } catch (e) {
      throw new Error(`${e.message ?? e} (was the file moved or deleted?)`);
    }
    told(bytes.length);
    return bytes;
  };
}

/** Bytes `first..=last` of `url`, by a synchronous ranged request (this is a worker). */
function fetchRange(url, first, last) {
  const broke = (why) => new Error(`the download of ${url} broke at byte ${first}: ${why}`);
  const request = new XMLHttpRequest();
  request.open('GET', url, false);
  request.responseType = 'arraybuffer';
  request.setRequestHeader('range', `bytes=${first}-${last}`);
  try {
    request.send();
  } catch (e) {
    throw broke(e.message ?? e);
  }
  if (request.status !== 206) throw broke(`HTTP ${request.status} ${request.statusText}`.trim());
  const bytes = new Uint8Array(request.response);
  if (bytes.length !== last - first + 1) throw broke(`${bytes.length} bytes came where ${last - first + 1} were asked for`);
  return bytes;
}

/** A range-at-a-time reader of `input`, or null for a stream. */
function readerOf({ blob, ranged, total, from }, progress) {
  if (blob) return blobReader(blob, readProgress(total, from, progress));
  if (ranged) return rangeReader((first, last) => fetchRange(ranged, first, last), total, readProgress(total, from, progress));
  return null;
}

/** Streams a download into the engine: the whole file, or (`headerOnly`) just enough to check
 * its header while the rest goes to disk. */
async function receive(engine, { stream, total, from, abort }, headerOnly, progress) {
  try {
    engine.beginLoad(total, headerOnly);
  } catch (e) {
    abort?.abort();
    stream.cancel().catch(() => {});
    throw e;
  }
  const reader = stream.getReader();
  let loaded = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      engine.push(value);
      loaded += value.length;
      progress({ phase: 'read', loaded, total, from });
    }
  } catch (e) {
    // Also ends the copy being kept: a refused or broken download is not kept.
    abort?.abort();
    reader.cancel().catch(() => {});
    throw e;
  }
  return loaded;
}

/**
 * Loads a model. A picked file, a kept copy and a download from a server that answers ranges
 * are read a range at a time, so the wasm heap never holds the file; a download that is being
 * kept is checked from its header as it arrives, then loaded from the kept copy the same way;
 * only a download not kept from a server that ignores ranges is held whole while it loads.
 */
async function load({ source, ctx = 0, kvType = 'f16', keep = true }, progress) {
  const engine = opened();
  const started = performance.now();
  const input = await openSource(source, keep);
  try {
    const model = await loadFrom(engine, input, source, { ctx, kvType }, progress);
    model.loadSeconds = (performance.now() - started) / 1000;
    return model;
  } catch (e) {
    input.abort?.abort();
    // A copy this load was writing is not kept when the model did not load (a small file,
    // such as a page answered in place of a model, is written whole before it is refused).
    if (input.copying) await input.saved.then((k) => (k.kept ? deleteModel(source) : null)).catch(() => {});
    throw e;
  }
}

async function loadFrom(engine, input, source, { ctx, kvType }, progress) {
  const { total, name, from } = input;
  let kept = input.copying ? null : await (input.saved ?? { kept: from === 'cache' });
  let read = readerOf(input, progress);
  if (!read) {
    const loaded = await receive(engine, input, Boolean(input.copying), progress);
    if (input.copying) {
      // The copy is written behind the engine's reading; it may still be going.
      progress({ phase: 'keep', loaded, total, from });
      kept = await input.saved;
      const copy = kept.kept ? await keptModel(source) : null;
      if (copy) {
        read = readerOf({ blob: await copy.blob(), total, from: 'cache' }, progress);
      } else {
        // Not kept after all (the quota ran out while writing): fetched again.
        const fetched = await openSource(source, false);
        read = readerOf(fetched, progress);
        if (!read) await receive(engine, fetched, false, progress);
      }
    }
  }
  if (!read) progress({ phase: 'upload', loaded: total, total, from });
  const model = JSON.parse(read ? engine.loadRanges(total, read, name, ctx, kvType) : engine.finishLoad(name, ctx, kvType));
  Object.assign(model, { from, kept: kept.kept, ...(kept.why ? { notKept: kept.why } : {}) });
  progress({ phase: 'done', loaded: total, total, from });
  return model;
}

/** Runs one generation to its end, or until it is cancelled or a newer call arrives; each token
 * goes out as an event. The result is the generation's figures (with any text held back). */
async function generate({ request }, token, id, mine) {
  const engine = opened();
  engine.start(JSON.stringify(request));
  try {
    while (mine === generation && !cancelled.has(id)) {
      const next = await engine.next();
      if (next == null) break;
      token(JSON.parse(next));
    }
  } finally {
    // Cancels of this and of earlier generations (one that had already ended) are spent.
    for (const target of cancelled) if (target <= id) cancelled.delete(target);
  }
  return JSON.parse(engine.stop());
}

const calls = {
  async open() {
    if (!engine) {
      await init();
      engine = await openEngine();
    }
    return null;
  },
  adapterInfo: () => JSON.parse(opened().adapterInfo()),
  load,
  generate,
  reset: () => opened().reset(),
};

self.onmessage = ({ data: { id, name, args } }) => {
  if (name === 'cancel') {
    cancelled.add(args.target);
    return;
  }
  const call = calls[name];
  if (!call) {
    self.postMessage({ id, error: `the engine has no call named ${name}` });
    return;
  }
  const mine = name === 'generate' || name === 'load' || name === 'reset' ? ++generation : generation;
  const emit = (event) => self.postMessage({ id, event });
  exclusive(() => call(args ?? {}, emit, id, mine)).then(
    (result) => self.postMessage({ id, result: result ?? null }),
    (e) => self.postMessage({ id, error: e?.message ?? String(e) }),
  );
};
