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
import { deleteModel, keepWhileReading, keptModel } from './model-cache.js';
import { fileName } from './model-source.js';

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
 * kept copy), or a download's stream: {blob | stream, total, name, from, copying, saved, abort}.
 * A download is kept in this browser while it is read (when `keep` and there is room). */
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
  let response;
  try {
    response = await fetch(url, { signal: abort.signal });
  } catch (e) {
    throw new Error(`could not fetch ${url} (${e.message ?? e}: offline, or a site that does not let other pages ` +
      'read its files), and it is not kept in this browser');
  }
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  // A compressed response's Content-Length counts compressed bytes: then the size is unknown.
  const total = response.headers.get('content-encoding') ? 0 : Number(response.headers.get('content-length')) || 0;
  if (!keep) return { stream: response.body, total, name, from: 'network', abort };
  const { body, copying, saved } = await keepWhileReading(url, response, total);
  return { stream: body, total, name, from: 'network', copying, saved, abort };
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
 * Loads a model. A picked file or a kept copy is read a range at a time, so the wasm heap never
 * holds the file; a download that is being kept is checked from its header as it arrives, then
 * loaded from the kept copy the same way; one that is not kept is held whole while it loads.
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
  let kept = { kept: from === 'cache' };
  let blob = input.blob;
  if (!blob) {
    // Held whole unless a copy is being written to load from.
    const loaded = await receive(engine, input, Boolean(input.copying), progress);
    if (input.copying) {
      // The copy is written behind the engine's reading; it may still be going.
      progress({ phase: 'keep', loaded, total, from });
      kept = await input.saved;
      const copy = kept.kept ? await keptModel(source) : null;
      if (copy) {
        blob = await copy.blob();
      } else {
        // Not kept after all (the quota ran out while writing): fetched again, held whole.
        await receive(engine, await openSource(source, false), false, progress);
      }
    } else if (input.saved) {
      kept = await input.saved;
    }
  }
  progress({ phase: 'upload', loaded: total, total, from });
  const model = JSON.parse(blob ? engine.loadBlob(blob, name, ctx, kvType) : engine.finishLoad(name, ctx, kvType));
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
