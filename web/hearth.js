// window.hearth: hearth's engine (the Rust library compiled to wasm32) on this browser's
// WebGPU adapter. The page uses it, and so can tests and other scripts:
//
//   await hearth.load(urlOrFile, ({phase, loaded, total, from}) => ...)   → the model's description
//   await hearth.models.list(), hearth.models.delete(url), hearth.models.storage()
//   for await (const {id, text, reasoning} of hearth.generate(promptOrMessages, options)) ...
//   hearth.adapterInfo(), hearth.stats(), hearth.reset(), hearth.webgpuProblem()
//   await hearth.chat.completions.create({messages, stream, temperature, max_tokens, ...})
//     → OpenAI's chat.completion object, or (stream: true) an async iterator of its
//       chat.completion.chunk objects, as the OpenAI JS client returns them
//
// generate's options: maxTokens, temperature (0: greedy), topP, topK, minP, repeatPenalty,
// seed, raw (no chat template), system, and for structured output jsonSchema (an object: the
// answer is JSON valid under it) or grammar (llguidance's Lark syntax). A prompt is one user turn; an array of
// {role, content} messages is a conversation, whose already-processed start is reused.
//
// Served by `hearth serve --web DIR`, the page runs on that server instead (`hearth.server()`
// is then its model's name): generate goes through its OpenAI API, streamed, and no WebGPU is
// needed; load and reset have nothing to do there.
//
// The engine itself runs in a Web Worker (engine-worker.js): this module sends it calls and
// receives their progress, tokens and results, so the page never waits on the engine.
import { deleteModel, listModels, modelKey, storageUse } from './model-cache.js';

let opening = null;
let generation = 0;
let lastStats = null;

let worker = null;
let lastCall = 0;
// Each call in flight: its id → what to do with the worker's messages about it.
const inFlight = new Map();

/** The worker's script. A worker must come from the page's own origin: where this module was
 * imported from another site (served with CORS), a one-line module of the page's origin that
 * imports the engine's script stands in for it. */
function workerScript() {
  const script = new URL('./engine-worker.js', import.meta.url);
  if (script.origin === location.origin) return script;
  return URL.createObjectURL(new Blob([`import ${JSON.stringify(script.href)};`], { type: 'text/javascript' }));
}

function engineWorker() {
  if (!worker) {
    worker = new Worker(workerScript(), { type: 'module' });
    worker.onmessage = ({ data }) => inFlight.get(data.id)?.(data);
    worker.onerror = (e) => {
      e.preventDefault();
      for (const handle of inFlight.values()) handle({ error: `the engine's worker failed: ${e.message ?? 'no reason given'}` });
      inFlight.clear();
      worker?.terminate();
      [worker, opening] = [null, null];
    };
  }
  return worker;
}

/** Sends the call `name` to the engine's worker: {id, result}, the result a promise; its
 * progress events and tokens go to `onEvent`. */
function send(name, args, onEvent = () => {}) {
  const id = ++lastCall;
  const result = new Promise((resolve, reject) => {
    inFlight.set(id, (message) => {
      if ('event' in message) {
        onEvent(message.event);
        return;
      }
      inFlight.delete(id);
      if ('error' in message) reject(new Error(message.error));
      else resolve(message.result);
    });
  });
  engineWorker().postMessage({ id, name, args });
  return { id, result };
}

const call = (name, args, onEvent) => send(name, args, onEvent).result;

let serverModel;
// The key `hearth serve --api-key` asks for, kept in this browser once given.
const apiKeyStore = 'hearth-api-key';
let apiKey = null;
try {
  apiKey = localStorage.getItem(apiKeyStore);
} catch {
  // Storage refused (a sandboxed frame): the key lasts as long as the page.
}

/** Sets the API key sent to the hearth server this page came from (`hearth serve --api-key`),
 * kept in this browser for next time; an empty key forgets it. */
function setApiKey(key) {
  apiKey = key || null;
  // The server's model list is read again with the key.
  serverModel = undefined;
  try {
    if (apiKey) localStorage.setItem(apiKeyStore, apiKey);
    else localStorage.removeItem(apiKeyStore);
  } catch {
    // As above.
  }
}

const withKey = (headers = {}) => (apiKey ? { ...headers, authorization: `Bearer ${apiKey}` } : headers);

// The name completions report as their `model`.
let loadedName = null;

/** The name of the model of the `hearth serve` this page came from, or null (the page runs its
 * own engine). */
function server() {
  serverModel ??= (async () => {
    try {
      const health = await fetch('health', { cache: 'no-store' });
      const body = health.ok ? await health.json() : null;
      if (!body || typeof body.parallel !== 'number') return null;
      const models = await (await fetch('v1/models', { cache: 'no-store', headers: withKey() })).json();
      return models.data?.[0]?.id ?? 'hearth';
    } catch {
      return null;
    }
  })();
  return serverModel;
}

/** Why this browser cannot run hearth (a sentence saying what to do), or null. */
export async function webgpuProblem() {
  if (await server()) return null;
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
    await call('open');
  })().catch((e) => {
    opening = null;
    throw e;
  });
  return opening;
}

/** The adapter: what the browser says of it and what hearth runs on it. */
async function adapterInfo() {
  await open();
  const info = await call('adapterInfo');
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

/**
 * Loads a GGUF from a URL (or a Hugging Face file, see model-source.js) or a File, in the
 * engine's worker (engine-worker.js), a range at a time (the file is never held in memory;
 * only a download not kept, from a server that does not answer ranges, is held whole) and
 * refused as soon as its header shows a model that cannot run here. A URL's download is kept
 * in this browser (`keep: false` not to), and a kept one loads from disk. `ctx`: the context in tokens (0: the model's, at
 * most 4096); `kvType`: how the KV cache stores keys and values ('f16', 'q8_0', 'q4_0' or
 * 'f32').
 */
async function load(source, onProgress = () => {}, { ctx = 0, kvType = 'f16', keep = true } = {}) {
  if (!(source instanceof Blob) && typeof source !== 'string' && !(source instanceof URL)) {
    throw new TypeError('hearth.load takes a URL or a File');
  }
  // Addresses are the page's, not the worker's: resolved here.
  const from = source instanceof Blob ? source : modelKey(String(source));
  await open();
  generation++;
  const model = await call('load', { source: from, ctx, kvType, keep }, onProgress);
  loadedName = model.name ?? model.file ?? null;
  return model;
}

/** The models kept in this browser, and forgetting one. */
const models = {
  /** [{url, name, bytes, savedAt}], newest first. */
  list: listModels,
  /** Forgets the model kept for `url`; whether there was one. */
  delete: deleteModel,
  /** What this site stores and may store here: {usage, quota} in bytes. */
  storage: storageUse,
};

/**
 * Generates after a prompt (or a conversation), yielding {id, text, reasoning} per token
 * (`reasoning`: the text is the model's thinking, not its answer). Leaving the
 * loop (break, return, or a newer generate call) stops it; hearth.stats() then has its figures.
 */
async function* generate(prompt, options = {}) {
  const model = await server();
  if (model) {
    yield* generateOnServer(model, prompt, options);
    return;
  }
  await open();
  const request = { ...options, ...(Array.isArray(prompt) ? { messages: prompt } : { prompt: String(prompt) }) };
  generation++;
  const tokens = [];
  let wake = () => {};
  let outcome = null;
  const { id, result } = send('generate', { request }, (token) => {
    tokens.push(token);
    wake();
  });
  result.then((stats) => { outcome = { stats }; }, (error) => { outcome = { error }; }).finally(() => wake());
  let ended = false;
  try {
    for (;;) {
      if (tokens.length) {
        yield tokens.shift();
        continue;
      }
      if (outcome) break;
      await new Promise((resolve) => { wake = resolve; });
    }
    ended = true;
  } finally {
    if (!outcome) engineWorker().postMessage({ name: 'cancel', args: { target: id } });
    const stats = await result.catch((e) => {
      if (ended) throw e;
      return null;
    });
    if (stats) lastStats = stats;
    // The end of an incomplete UTF-8 sequence, held back until now.
    if (ended && stats?.text) yield { id: null, text: stats.text };
  }
}

/** `generate` through the server's API: a streamed chat (or, raw, text) completion. */
async function* generateOnServer(model, prompt, options) {
  const raw = options.raw || !Array.isArray(prompt);
  const body = {
    model, stream: true, max_tokens: options.maxTokens, temperature: options.temperature,
    top_p: options.topP, seed: options.seed,
  };
  if (options.jsonSchema) body.response_format = { type: 'json_schema', json_schema: { name: 'answer', schema: options.jsonSchema } };
  if (raw) {
    body.prompt = Array.isArray(prompt) ? prompt.map((m) => m.content).join('\n') : String(prompt);
  } else {
    body.messages = options.system ? [{ role: 'system', content: options.system }, ...prompt] : prompt;
  }
  const mine = ++generation;
  const abort = new AbortController();
  const started = performance.now();
  const response = await fetch(raw ? 'v1/completions' : 'v1/chat/completions', {
    method: 'POST', headers: withKey({ 'content-type': 'application/json' }), body: JSON.stringify(body), signal: abort.signal,
  });
  if (response.status === 401) {
    throw new Error(apiKey ? 'the server refused this API key: enter the one `hearth serve --api-key` was given, in Settings'
      : 'this server needs an API key (`hearth serve --api-key`): enter it in Settings');
  }
  if (!response.ok) {
    const error = await response.json().catch(() => null);
    throw new Error(error?.error?.message ?? `the server answered HTTP ${response.status}`);
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let [buffered, pieces, first, usage, stop] = ['', 0, 0, null, 'stopped'];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || mine !== generation) break;
      buffered += value;
      const events = buffered.split('\n\n');
      buffered = events.pop();
      const lines = events.flatMap((e) => e.split('\n')).filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]');
      for (const line of lines) {
        const chunk = JSON.parse(line.slice('data: '.length));
        usage = chunk.usage ?? usage;
        const choice = chunk.choices?.[0];
        if (!choice) continue;
        stop = choice.finish_reason ?? stop;
        const delta = choice.delta ?? { content: choice.text };
        for (const [text, reasoning] of [[delta.reasoning_content, true], [delta.content, false]]) {
          if (!text) continue;
          if (pieces++ === 0) first = performance.now();
          yield reasoning ? { id: null, text, reasoning } : { id: null, text };
        }
      }
    }
  } finally {
    abort.abort();
    const now = performance.now();
    const generated = usage?.completion_tokens ?? pieces;
    lastStats = {
      promptTokens: usage?.prompt_tokens ?? 0, generated, stop,
      promptTokensPerSecond: (usage?.prompt_tokens ?? 0) / Math.max((first || now) - started, 1) * 1000,
      decodeTokensPerSecond: Math.max(generated - 1, 0) / Math.max(now - (first || now), 1) * 1000,
    };
  }
}

/** Figures of the last generation: tokens, seconds, tokens/s, why it stopped. */
function stats() {
  return lastStats;
}

/** Forgets the conversation kept in the KV cache. */
async function reset() {
  if (await server()) return;
  await open();
  generation++;
  await call('reset');
}

/**
 * OpenAI's `chat.completions.create` over `generate`: the request's messages, temperature,
 * top_p, max_tokens (or max_completion_tokens), seed and response_format (json_object,
 * json_schema); the answer as a `chat.completion`, or with `stream: true` an async iterator of
 * `chat.completion.chunk`s ending with the finish reason and the usage.
 */
async function createChatCompletion(request) {
  const { messages, stream = false, temperature, top_p: topP, seed, response_format: format } = request ?? {};
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new TypeError('messages must be a non-empty array of {role, content}');
  }
  if ((request.n ?? 1) !== 1) throw new TypeError('n: one choice per request here');
  const options = { temperature, topP, seed, maxTokens: request.max_completion_tokens ?? request.max_tokens };
  if (format?.type === 'json_schema') options.jsonSchema = format.json_schema?.schema ?? {};
  else if (format?.type === 'json_object') options.jsonSchema = { type: 'object' };
  const base = {
    id: `chatcmpl-${crypto.randomUUID()}`, created: Math.floor(Date.now() / 1000),
    model: (await server()) ?? loadedName ?? 'hearth',
  };
  const ending = () => {
    const s = lastStats ?? {};
    return {
      finish_reason: s.stop === 'length' ? 'length' : 'stop',
      usage: { prompt_tokens: s.promptTokens ?? 0, completion_tokens: s.generated ?? 0,
        total_tokens: (s.promptTokens ?? 0) + (s.generated ?? 0) },
    };
  };
  if (stream) {
    return (async function* chunks() {
      const chunk = (delta, finish = null) => ({ ...base, object: 'chat.completion.chunk',
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
      yield chunk({ role: 'assistant', content: '' });
      for await (const { text, reasoning } of generate(messages, options)) {
        if (text) yield chunk(reasoning ? { reasoning_content: text } : { content: text });
      }
      const { finish_reason: finish, usage } = ending();
      yield { ...chunk({}, finish), usage };
    })();
  }
  let [content, thinking] = ['', ''];
  for await (const { text, reasoning } of generate(messages, options)) {
    if (reasoning) thinking += text;
    else content += text;
  }
  const message = { role: 'assistant', content, ...(thinking ? { reasoning_content: thinking } : {}) };
  const { finish_reason: finish, usage } = ending();
  return { ...base, object: 'chat.completion', choices: [{ index: 0, message, logprobs: null, finish_reason: finish }], usage };
}

const chat = { completions: { create: createChatCompletion } };

window.hearth = { load, generate, adapterInfo, stats, reset, webgpuProblem, server, setApiKey, chat, models };
export default window.hearth;
