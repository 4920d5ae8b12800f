// The page: shows the adapter, loads a model (URL, file picker, or drop), and chats through
// window.hearth, which tests drive the same way.
import hearth from './hearth.js';
import { megabytes } from './model-cache.js';

const $ = (id) => document.getElementById(id);
let messages = [];
let stopRequested = false;
let busy = false;

function setBusy(value) {
  busy = value;
  $('send').disabled = value;
  $('stop').disabled = !value;
  $('reset').disabled = value;
  $('load-button').disabled = value;
  $('model-file').disabled = value;
}

function addMessage(role, text = '') {
  const div = document.createElement('div');
  div.className = `message ${role}`;
  div.textContent = text;
  $('transcript').append(div);
  return div;
}

const reading = { network: 'Downloading', cache: 'Reading from this browser', file: 'Reading' };
let readStarted = 0;

function showProgress({ phase, loaded, total, from }) {
  const bar = $('progress');
  bar.hidden = phase === 'done';
  if (phase === 'read') {
    if (total) bar.value = loaded / total;
    else bar.removeAttribute('value');
    readStarted ||= performance.now();
    const seconds = (performance.now() - readStarted) / 1000;
    const speed = seconds > 0.5 ? `, ${megabytes(loaded / seconds)}/s` : '';
    $('model-status').textContent =
      `${reading[from] ?? 'Reading'} ${megabytes(loaded)}${total ? ` of ${megabytes(total)}` : ''}${speed}…`;
  } else if (phase === 'upload') {
    bar.removeAttribute('value');
    $('model-status').textContent = 'Preparing the weights on the GPU…';
  } else if (phase === 'keep') {
    $('model-status').textContent = 'Keeping a copy in this browser for next time…';
  }
}

async function loadModel(source) {
  if (busy) return;
  setBusy(true);
  $('stop').disabled = true;
  readStarted = 0;
  try {
    const m = await hearth.load(source, showProgress, { ctx: Number($('ctx').value) || 0, kvType: $('kv-type').value });
    messages = [];
    $('transcript').replaceChildren();
    const from = { network: 'downloaded', cache: 'from this browser', file: 'from the file' }[m.from];
    $('model-status').textContent =
      `${m.name ?? m.file} (${m.architecture}, ${(m.parameters / 1e6).toFixed(0)} M parameters, ` +
      `${megabytes(m.fileBytes)}, loaded ${from} in ${m.loadSeconds.toFixed(1)} s): ${megabytes(m.weightBytes)} ` +
      `of weights and ${megabytes(m.sessionBytes)} for a ${m.context}-token context on the GPU` +
      `${m.chatTemplate ? '' : '; no chat template, prompts go in raw'}.${m.notKept ? ` It was ${m.notKept}` : ''}`;
    $('prompt').disabled = false;
    $('prompt').focus();
  } catch (e) {
    $('progress').hidden = true;
    $('model-status').textContent = `Could not load the model: ${e.message ?? e}`;
  } finally {
    setBusy(false);
    $('send').disabled = $('prompt').disabled;
    $('reset').disabled = $('prompt').disabled;
    showKeptModels();
  }
}

/** The models kept in this browser, each with Load and Delete, and the site's storage. */
async function showKeptModels() {
  const kept = await hearth.models.list();
  const { usage, quota } = await hearth.models.storage();
  $('kept').hidden = kept.length === 0;
  $('kept-list').replaceChildren(...kept.map((m) => {
    const item = document.createElement('li');
    item.dataset.url = m.url;
    const load = document.createElement('button');
    load.textContent = 'Load';
    load.addEventListener('click', () => loadModel(m.url));
    const forget = document.createElement('button');
    forget.textContent = 'Delete';
    forget.addEventListener('click', async () => {
      await hearth.models.delete(m.url);
      showKeptModels();
    });
    item.append(`${m.name} (${megabytes(m.bytes)}) `, load, ' ', forget);
    return item;
  }));
  $('storage').textContent = usage !== null && quota !== null
    ? `This site stores ${megabytes(usage)} here and may store ${megabytes(Math.max(quota - usage, 0))} more.` : '';
}

function options() {
  const number = (id) => ($(id).value === '' ? undefined : Number($(id).value));
  return {
    maxTokens: number('max-tokens'),
    temperature: number('temperature'),
    topP: number('top-p'),
    seed: number('seed') ?? Math.floor(Math.random() * 2 ** 32),
    system: $('system').value || undefined,
    raw: $('raw').checked || undefined,
  };
}

async function send(event) {
  event.preventDefault();
  const text = $('prompt').value;
  if (busy || !text.trim()) return;
  $('prompt').value = '';
  const raw = $('raw').checked;
  addMessage('user', text);
  const answer = addMessage('assistant');
  const turn = raw ? text : [...messages, { role: 'user', content: text }];
  const opts = options();
  if (raw) delete opts.system;
  stopRequested = false;
  setBusy(true);
  $('speed').textContent = 'reading the prompt…';
  let tokens = 0;
  let started = 0;
  // Reasoning goes into a folded block above the answer, made when the first of it comes.
  let thoughts = null;
  const reply = document.createElement('span');
  answer.append(reply);
  try {
    for await (const { text: piece, reasoning } of hearth.generate(turn, opts)) {
      if (reasoning) {
        if (!thoughts) {
          const details = document.createElement('details');
          details.className = 'reasoning';
          details.innerHTML = '<summary>Reasoning</summary>';
          thoughts = document.createElement('div');
          details.append(thoughts);
          answer.prepend(details);
        }
        thoughts.textContent += piece;
      } else {
        reply.textContent += piece;
      }
      if (tokens++ === 0) started = performance.now();
      else $('speed').textContent = `${tokens} tokens, ${((tokens - 1) / ((performance.now() - started) / 1000)).toFixed(1)} tokens/s`;
      if (stopRequested) break;
    }
    const s = hearth.stats();
    if (s) {
      $('speed').textContent = `prompt ${s.promptTokens} tokens at ${s.promptTokensPerSecond.toFixed(1)} t/s · ` +
        `${s.generated} tokens at ${s.decodeTokensPerSecond.toFixed(1)} t/s · ${s.stop}`;
    }
    if (!raw) messages = [...turn, { role: 'assistant', content: reply.textContent }];
  } catch (e) {
    answer.remove();
    addMessage('error', e.message ?? String(e));
    $('speed').textContent = '';
  } finally {
    answer.dataset.done = 'true';
    setBusy(false);
  }
}

async function start() {
  const served = await hearth.server();
  if (served) {
    $('adapter').textContent = `This page runs on the hearth server it came from (${location.host}), on that machine's GPU.`;
    $('load-url').hidden = true;
    document.querySelector('#model-panel .hint').hidden = true;
    const showModel = (name) => { $('model-status').textContent = `The server's model: ${name}.`; };
    showModel(served);
    $('api-key-label').hidden = false;
    $('api-key').addEventListener('change', async () => {
      hearth.setApiKey($('api-key').value.trim());
      showModel(await hearth.server());
    });
    $('prompt').disabled = false;
    setBusy(false);
    document.body.dataset.ready = 'true';
    return;
  }
  const problem = await hearth.webgpuProblem();
  if (problem) {
    $('no-webgpu-why').textContent = problem;
    $('no-webgpu').hidden = false;
    $('adapter').textContent = 'No WebGPU adapter.';
    for (const id of ['load-button', 'model-file']) $(id).disabled = true;
    return;
  }
  try {
    const a = await hearth.adapterInfo();
    const names = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' ');
    $('adapter').textContent = `${names || a.name || 'WebGPU adapter'}${a.cpuAdapter ? ' (runs on the CPU)' : ''}: ` +
      `${a.paths}, f16 ${a.f16 ? 'yes' : 'no'}, subgroups ${a.subgroups ? 'yes' : 'no'}; ` +
      `largest buffer binding ${megabytes(a.limits.maxStorageBufferBindingSize)}, ` +
      `textures up to ${a.limits.maxTextureDimension2D}² × ${a.limits.maxTextureArrayLayers} layers.`;
  } catch (e) {
    $('adapter').textContent = `The WebGPU adapter would not open: ${e.message ?? e}`;
  }
  await showKeptModels().catch(() => {});
  document.body.dataset.ready = 'true';
}

// The page's own files are kept by a service worker, so it also opens with the network off.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').catch((e) => console.warn(`no offline copy of the page: ${e.message ?? e}`));
}

$('load-url').addEventListener('submit', (e) => {
  e.preventDefault();
  loadModel($('model-url').value);
});
$('model-file').addEventListener('change', () => {
  const file = $('model-file').files[0];
  if (file) loadModel(file);
});
$('ask').addEventListener('submit', send);
$('prompt').addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey) send(e);
});
$('stop').addEventListener('click', () => { stopRequested = true; });
$('reset').addEventListener('click', async () => {
  messages = [];
  $('transcript').replaceChildren();
  $('speed').textContent = '';
  await hearth.reset();
});
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  document.body.classList.remove('dragging');
  const file = e.dataTransfer?.files?.[0];
  if (file) loadModel(file);
});

start();
