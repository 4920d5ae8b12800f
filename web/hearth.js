// window.hearth: hearth's engine (the Rust library compiled to wasm32) on this browser's
// WebGPU adapter. The page uses it, and so can tests and other scripts:
//
//   await hearth.load(urlOrFile, ({phase, loaded, total}) => ...)   → the model's description
//   for await (const {id, text, reasoning} of hearth.generate(promptOrMessages, options)) ...
//   hearth.adapterInfo(), hearth.stats(), hearth.reset(), hearth.webgpuProblem()
//
// generate's options: maxTokens, temperature (0: greedy), topP, topK, minP, repeatPenalty,
// seed, raw (no chat template), system, and for structured output jsonSchema (an object: the
// answer is JSON valid under it) or grammar (llguidance's Lark syntax). A prompt is one user turn; an array of
// {role, content} messages is a conversation, whose already-processed start is reused.
import init, { openEngine } from './pkg/hearth_web.js';

let opening = null;
// Calls into the engine run one at a time, in the order they were made.
let queue = Promise.resolve();
let generation = 0;
let lastStats = null;

function exclusive(call) {
  const run = queue.then(call);
  queue = run.catch(() => {});
  return run;
}

/** Why this browser cannot run hearth (a sentence saying what to do), or null. */
export async function webgpuProblem() {
  if (!window.isSecureContext) {
    return 'WebGPU needs a secure page: open it from https:// or from localhost / 127.0.0.1.';
  }
  if (!('gpu' in navigator)) {
    return 'This browser does not offer WebGPU. Use a current Chrome or Edge (113 or later), ' +
      'Safari 26, or Firefox 141 on Windows; on Linux, start Chromium with --enable-unsafe-webgpu.';
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) {
    return 'This browser offers WebGPU but no adapter: it may have blocked your GPU or its driver ' +
      '(see chrome://gpu), or WebGPU needs switching on (Chromium on Linux: --enable-unsafe-webgpu).';
  }
  return null;
}

function open() {
  opening ??= (async () => {
    const problem = await webgpuProblem();
    if (problem) throw new Error(problem);
    await init();
    return openEngine();
  })().catch((e) => {
    opening = null;
    throw e;
  });
  return opening;
}

/** The adapter: what the browser says of it and what hearth runs on it. */
async function adapterInfo() {
  const engine = await open();
  const info = JSON.parse(await exclusive(() => engine.adapterInfo()));
  const adapter = await navigator.gpu.requestAdapter();
  const b = adapter?.info;
  if (b) {
    Object.assign(info, {
      vendor: b.vendor, architecture: b.architecture, device: b.device,
      description: b.description, fallbackAdapter: b.isFallbackAdapter ?? null,
    });
  }
  return info;
}

function fileName(url) {
  const last = new URL(url, location.href).pathname.split('/').pop();
  return decodeURIComponent(last || 'model.gguf');
}

/**
 * Loads a GGUF from a URL or a File, streaming it into the engine chunk by chunk (the tab
 * holds it once). A model that cannot run here is refused as soon as its header is in. `ctx`:
 * the context in tokens (0: the model's, at most 4096); `kvType`: how the KV cache stores keys
 * and values ('f16', 'q8_0', 'q4_0' or 'f32').
 */
async function load(source, onProgress = () => {}, { ctx = 0, kvType = 'f16' } = {}) {
  const engine = await open();
  let stream, total, name;
  if (source instanceof Blob) {
    [stream, total, name] = [source.stream(), source.size, source.name ?? 'model.gguf'];
  } else if (typeof source === 'string' || source instanceof URL) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`could not fetch ${source}: HTTP ${response.status} ${response.statusText}`);
    // A compressed response's Content-Length counts compressed bytes: then the size is unknown.
    const length = response.headers.get('content-encoding') ? 0 : Number(response.headers.get('content-length'));
    [stream, total, name] = [response.body, length || 0, fileName(source)];
  } else {
    throw new TypeError('hearth.load takes a URL or a File');
  }
  return exclusive(async () => {
    generation++;
    try {
      engine.beginLoad(total);
    } catch (e) {
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
        onProgress({ phase: 'read', loaded, total });
      }
    } catch (e) {
      reader.cancel().catch(() => {});
      throw e;
    }
    onProgress({ phase: 'upload', loaded, total });
    // Let the page paint the new phase: the upload runs without yielding.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const model = JSON.parse(engine.finishLoad(name, ctx, kvType));
    onProgress({ phase: 'done', loaded, total });
    return model;
  });
}

/**
 * Generates after a prompt (or a conversation), yielding {id, text, reasoning} per token
 * (`reasoning`: the text is the model's thinking, not its answer). Leaving the
 * loop (break, return, or a newer generate call) stops it; hearth.stats() then has its figures.
 */
async function* generate(prompt, options = {}) {
  const engine = await open();
  const request = { ...options, ...(Array.isArray(prompt) ? { messages: prompt } : { prompt: String(prompt) }) };
  const mine = ++generation;
  await exclusive(() => engine.start(JSON.stringify(request)));
  let ended = false;
  try {
    for (;;) {
      const token = await exclusive(() => (mine === generation ? engine.next() : null));
      if (token == null) break;
      yield JSON.parse(token);
    }
    ended = true;
  } finally {
    if (mine === generation) {
      const stats = JSON.parse(await exclusive(() => engine.stop()));
      lastStats = stats;
      // The end of an incomplete UTF-8 sequence, held back until now.
      if (ended && stats?.text) yield { id: null, text: stats.text };
    }
  }
}

/** Figures of the last generation: tokens, seconds, tokens/s, why it stopped. */
function stats() {
  return lastStats;
}

/** Forgets the conversation kept in the KV cache. */
async function reset() {
  const engine = await open();
  generation++;
  await exclusive(() => engine.reset());
}

window.hearth = { load, generate, adapterInfo, stats, reset, webgpuProblem };
export default window.hearth;
