// window.hearth: hearth's engine (the Rust library compiled to wasm32) on this browser's
// WebGPU adapter. The page uses it, and so can tests and other scripts:
//
//   await hearth.load(urlOrFile, ({phase, loaded, total}) => ...)   → the model's description
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

let serverModel;
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
      const models = await (await fetch('v1/models', { cache: 'no-store' })).json();
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
    loadedName = model.name ?? model.file ?? name;
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
  const model = await server();
  if (model) {
    yield* generateOnServer(model, prompt, options);
    return;
  }
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
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: abort.signal,
  });
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
  const engine = await open();
  generation++;
  await exclusive(() => engine.reset());
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

window.hearth = { load, generate, adapterInfo, stats, reset, webgpuProblem, server, chat };
export default window.hearth;
