// The page end to end in Debian's Chromium (playwright-core drives /usr/bin/chromium; nothing
// is downloaded): greedy generation through window.hearth must give exactly the token ids the
// native CLI gives on the same adapter (SwiftShader, which is also Chromium's WebGPU adapter
// here), and the text must appear in the page; served by `hearth serve --web`, the page runs
// on that server, also in a browser without WebGPU. Run `hearth pull` and web/build.sh first.
//
// Environment: HEARTH_BIN (default target/debug/hearth), HEARTH_ARTIFACTS (screenshots and
// figures; default web/test-results), CHROMIUM (default /usr/bin/chromium).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const web = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(web, 'dist');
const modelName = 'SmolLM2-135M-Instruct.Q4_1.gguf';
const model = path.join(dist, 'models', modelName);
const hearthBin = process.env.HEARTH_BIN ?? path.join(web, '..', 'target', 'debug', 'hearth');
const artifacts = process.env.HEARTH_ARTIFACTS ?? path.join(web, 'test-results');
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
const prompts = JSON.parse(fs.readFileSync(path.join(web, '..', 'tests', 'fixtures', 'greedy_q4_1.json'))).results
  .map((r) => r.prompt);
const TOKENS = 32;
// A prompt of more than 512 tokens: the start of the perplexity text.
const longPrompt = fs.readFileSync(path.join(web, '..', 'tests', 'fixtures', 'ppl_text.txt'), 'utf8').slice(0, 2350);

// Flags for a headless Chromium on a machine with no network beyond loopback and no GPU.
const quiet = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

let server;
before(async () => {
  assert.ok(fs.existsSync(path.join(dist, 'pkg', 'hearth_web_bg.wasm')), 'web/dist is missing: run web/build.sh');
  assert.ok(fs.existsSync(model), `${model} is missing: run 'hearth pull', then web/build.sh`);
  assert.ok(fs.existsSync(hearthBin), `${hearthBin} is missing: cargo build`);
  fs.mkdirSync(artifacts, { recursive: true });
  // A server that ignores Range (test 2's answers ranges): a download not kept is held whole.
  server = await serve(dist, {
    // A model announced at 5 GB: held whole, refused from its length alone, before its bytes are read.
    '/huge.gguf': (request, response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 5e9 });
      response.write(Buffer.from('GGUF'));
      request.on('close', () => response.destroy());
    },
    // One beyond what any browser lets a site store: not kept, so held whole, and refused as that.
    '/vast.gguf': (request, response) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 1e13 });
      response.write(Buffer.from('GGUF'));
      request.on('close', () => response.destroy());
    },
  }, { ranges: false });
});
after(() => server?.close());

/** Asks `prompt` through the page's own controls (raw, greedy, TOKENS long); the answer's text. */
async function askInThePage(page, prompt, timeout) {
  await page.click('details summary');
  await page.check('#raw');
  await page.fill('#temperature', '0');
  await page.fill('#max-tokens', String(TOKENS));
  await page.fill('#prompt', prompt);
  await page.click('#send');
  const answer = await page.waitForSelector('.message.assistant[data-done]', { timeout });
  return answer.textContent();
}

async function openPage(args, url = server.url) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: [...quiet, ...args],
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`page error: ${e.message}`));
  await page.goto(url);
  return { browser, page, log };
}

/** hearth run on SwiftShader with the shader paths the browser runs (or on the adapter `env` picks). */
function native(prompt, extra, env = { VK_ICD_FILENAMES: swiftshader, HEARTH_DEVICE: 'SwiftShader' }) {
  const out = spawnSync(hearthBin, ['run', '--raw', '--temp', '0', '-n', String(TOKENS), '--model', model, ...extra, prompt], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  assert.equal(out.status, 0, `hearth run failed: ${out.stderr}`);
  const speed = /generated: (\d+) tokens, ([\d.]+) t\/s/.exec(out.stderr);
  return { stdout: out.stdout, decodeTokensPerSecond: speed ? Number(speed[2]) : NaN };
}

test('greedy ids in the browser equal the native CLI on SwiftShader, and the text shows in the page', { timeout: 30 * 60e3 }, async () => {
  const { browser, page, log } = await openPage(['--enable-unsafe-webgpu']);
  try {
    await page.waitForSelector('body[data-ready]', { timeout: 60e3 });
    const adapter = await page.evaluate(() => window.hearth.adapterInfo());
    assert.equal(adapter.architecture, 'swiftshader', `Chromium's WebGPU adapter here: ${JSON.stringify(adapter)}`);
    assert.match(await page.textContent('#adapter'), /swiftshader/);

    // A file that is not a model gets a clear error and leaves the page working.
    const refused = await page.evaluate(() => window.hearth.load('index.html').then(() => 'loaded', (e) => e.message));
    assert.match(refused, /GGUF/i, 'a non-GGUF file is refused by name');
    assert.deepEqual(await page.evaluate(() => window.hearth.models.list()), [], 'and is not kept');
    // (Not kept and from a server that ignores ranges, it is held whole; kept, it would be read
    // a range at a time.)
    const huge = await page.evaluate(() => window.hearth.load('huge.gguf', undefined, { keep: false })
      .then(() => 'loaded', (e) => e.message));
    assert.match(huge, /5\.00 GB.*4 GB/, 'a model beyond wasm32 is refused up front, with the sizes');
    const vast = await page.evaluate(() => window.hearth.load('vast.gguf').then(() => 'loaded', (e) => e.message));
    assert.match(vast, /10000\.00 GB.*4 GB/, 'a download there is no room to keep is held whole, so refused as one');

    // Not kept, from a server that ignores ranges: held whole while it loads.
    const fileBytes = fs.statSync(model).size;
    const held = await page.evaluate((url) => window.hearth.load(url, undefined, { keep: false }), `models/${modelName}`);
    assert.ok(held.heapBytes > fileBytes, `a download held whole: a heap of ${held.heapBytes} bytes`);
    const phases = await page.evaluate(async (url) => {
      const seen = new Set();
      await window.hearth.load(url, (p) => seen.add(`${p.phase} ${p.from}`));
      return [...seen];
    }, `models/${modelName}`);
    assert.deepEqual(phases, ['read network', 'keep network', 'read cache', 'done network'],
      'a download is kept, then loaded from the copy');

    const paths = adapter.subgroups ? [] : ['--no-subgroups'];
    const figures = [];
    for (const prompt of prompts) {
      const browserRun = await page.evaluate(async ({ prompt, maxTokens }) => {
        const ids = [];
        let text = '';
        for await (const t of window.hearth.generate(prompt, { raw: true, temperature: 0, maxTokens })) {
          if (t.id !== null) ids.push(t.id);
          text += t.text;
        }
        return { ids, text, stats: window.hearth.stats() };
      }, { prompt, maxTokens: TOKENS });
      const nativeIds = native(prompt, ['--ids', ...paths]);
      const want = nativeIds.stdout.trim().split(/\s+/).filter(Boolean).map(Number);
      assert.deepEqual(browserRun.ids, want, `ids for ${JSON.stringify(prompt)}`);
      figures.push({ prompt, browser: browserRun.stats.decodeTokensPerSecond, native: nativeIds.decodeTokensPerSecond });
    }

    // A conversation through the chat template: the second turn reuses the first from the KV
    // cache, and answers exactly as it does when the whole conversation is processed anew.
    const chat = await page.evaluate(async () => {
      const ask = async (messages) => {
        const ids = [];
        let text = '';
        for await (const t of window.hearth.generate(messages, { temperature: 0, maxTokens: 8 })) {
          if (t.id !== null) ids.push(t.id);
          text += t.text;
        }
        return { ids, text, processed: window.hearth.stats().promptTokens };
      };
      await window.hearth.reset();
      const turn1 = [{ role: 'user', content: 'Name a colour.' }];
      const first = await ask(turn1);
      const turn2 = [...turn1, { role: 'assistant', content: first.text }, { role: 'user', content: 'And another?' }];
      const reused = await ask(turn2);
      await window.hearth.reset();
      const anew = await ask(turn2);
      return { first, reused, anew };
    });
    assert.ok(chat.first.ids.length > 0, 'the model answers through its chat template');
    assert.deepEqual(chat.reused.ids, chat.anew.ids, 'the reused cache gives the same answer');
    assert.ok(chat.reused.processed < chat.anew.processed,
      `the second turn processed only its new tokens (${chat.reused.processed} of ${chat.anew.processed})`);

    // OpenAI's shape over the same engine: whole and streamed, the text generate gives.
    const completions = await page.evaluate(async () => {
      const messages = [{ role: 'user', content: 'Name a colour.' }];
      let text = '';
      for await (const t of window.hearth.generate(messages, { temperature: 0, maxTokens: 8 })) text += t.text;
      const request = { model: 'any', messages, temperature: 0, max_tokens: 8 };
      const whole = await window.hearth.chat.completions.create(request);
      const chunks = [];
      for await (const c of await window.hearth.chat.completions.create({ ...request, stream: true })) chunks.push(c);
      return { text, whole, chunks };
    });
    const { whole, chunks } = completions;
    assert.equal(whole.object, 'chat.completion');
    assert.equal(whole.choices[0].message.role, 'assistant');
    assert.equal(whole.choices[0].message.content, completions.text, 'create gives what generate gives');
    assert.ok(['stop', 'length'].includes(whole.choices[0].finish_reason), whole.choices[0].finish_reason);
    assert.ok(whole.usage.completion_tokens > 0 && whole.usage.completion_tokens <= 8, JSON.stringify(whole.usage));
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), completions.text, 'streamed pieces');
    const last = chunks.at(-1);
    assert.equal(last.choices[0].finish_reason, whole.choices[0].finish_reason);
    assert.deepEqual(last.usage, whole.usage);

    // Structured output: under a JSON schema the browser's answer is the CLI's, token for token,
    // and parses.
    const schema = { type: 'object', properties: { colour: { enum: ['red', 'green', 'blue'] },
      count: { type: 'integer', minimum: 0, maximum: 9 } }, required: ['colour', 'count'], additionalProperties: false };
    const question = 'Name a colour and a number.';
    const structured = await page.evaluate(async ({ question, schema, maxTokens }) => {
      const ids = [];
      let text = '';
      for await (const t of window.hearth.generate(question, { raw: true, temperature: 0, maxTokens, jsonSchema: schema })) {
        if (t.id !== null) ids.push(t.id);
        text += t.text;
      }
      return { ids, text };
    }, { question, schema, maxTokens: TOKENS });
    const schemaFile = path.join(artifacts, 'schema.json');
    fs.writeFileSync(schemaFile, JSON.stringify(schema));
    const wantStructured = native(question, ['--ids', '--json-schema', schemaFile, ...paths]).stdout;
    assert.deepEqual(structured.ids, wantStructured.trim().split(/\s+/).filter(Boolean).map(Number));
    assert.ok(['red', 'green', 'blue'].includes(JSON.parse(structured.text).colour), structured.text);

    // The same through the page's own controls: load with the Load button (the default URL),
    // then ask; the text appears in the transcript.
    await page.click('#load-button');
    await page.waitForFunction(() => /parameters/.test(document.getElementById('model-status').textContent),
      null, { timeout: 120e3 });
    const prompt = prompts[1];
    const shown = await askInThePage(page, prompt, 10 * 60e3);
    const want = native(prompt, paths).stdout.replace(/\n$/, '');
    assert.equal(shown, want, 'the page shows the text the CLI prints');
    assert.match(await page.textContent('#speed'), /t\/s/);
    await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true });

    const mean = (k) => figures.reduce((s, f) => s + f[k], 0) / figures.length;
    const summary = { adapter: adapter.architecture, paths: adapter.paths, tokens: TOKENS, perPrompt: figures,
      browserDecodeTokensPerSecond: mean('browser'), nativeDecodeTokensPerSecond: mean('native') };
    summary.ratio = summary.browserDecodeTokensPerSecond / summary.nativeDecodeTokensPerSecond;
    fs.writeFileSync(path.join(artifacts, 'speed.json'), JSON.stringify(summary, null, 1));
    console.log(`decode on ${adapter.architecture}: browser ${summary.browserDecodeTokensPerSecond.toFixed(2)} t/s, ` +
      `native CLI ${summary.nativeDecodeTokensPerSecond.toFixed(2)} t/s (${summary.ratio.toFixed(2)}x)`);
  } catch (e) {
    await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
    console.log(log.join('\n'));
    throw e;
  } finally {
    await browser.close();
  }
});

test('a downloaded model is kept: with the site unreachable the page opens and loads it from disk', { timeout: 15 * 60e3 }, async () => {
  // A site of its own, so that it can go away.
  const site = await serve(dist);
  const { browser, page, log } = await openPage(['--enable-unsafe-webgpu'], site.url);
  const url = `models/${modelName}`;
  const load = (how) => page.evaluate(({ url, how }) => window.hearth.load(url, undefined, how), { url, how });
  const kept = () => page.evaluate(() => window.hearth.models.list());
  const ask = () => page.evaluate(async (prompt) => {
    const ids = [];
    for await (const t of window.hearth.generate(prompt, { raw: true, temperature: 0, maxTokens: 4 })) {
      if (t.id !== null) ids.push(t.id);
    }
    return ids;
  }, prompts[0]);
  try {
    await page.waitForSelector('body[data-ready]', { timeout: 60e3 });
    await page.evaluate(() => navigator.serviceWorker.ready.then(() => null));

    // Where the site may not store the model, the load still works and says what is missing.
    const cdp = await page.context().newCDPSession(page);
    const origin = new URL(site.url).origin;
    const { usage } = await page.evaluate(() => window.hearth.models.storage());
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: usage + 20e6 });
    const cramped = await load({ ctx: 1024 });
    assert.equal(cramped.kept, false);
    const needs = `needs ${(fs.statSync(model).size / 1e6).toFixed(1)} MB and this site may store`;
    assert.ok(cramped.notKept?.includes(needs) && /\d MB more.*Delete kept models/.test(cramped.notKept), cramped.notKept);
    assert.deepEqual(await kept(), []);
    // Not kept (here the quota runs out while the copy is written, so the file is fetched
    // again), from a server that answers ranges: read a range at a time, 4 MiB or more each.
    const fileBytes = fs.statSync(model).size;
    assert.ok(cramped.heapBytes < fileBytes / 2,
      `a download not kept is read a range at a time: a heap of ${cramped.heapBytes} bytes for a ${fileBytes}-byte file`);
    const ranged = site.rangesSent.get(`/models/${modelName}`);
    assert.ok(ranged.requests <= Math.ceil(fileBytes / 2 ** 22) + 8 && ranged.bytes < 1.25 * fileBytes,
      `${ranged.requests} requests for ${ranged.bytes} bytes of a ${fileBytes}-byte file`);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin });

    const downloaded = await load({ ctx: 1024 });
    assert.deepEqual([downloaded.from, downloaded.kept], ['network', true], downloaded.notKept);
    assert.deepEqual((await kept()).map((m) => [m.name, m.bytes]), [[modelName, fs.statSync(model).size]]);
    const ids = await ask();

    site.close();
    await page.reload();
    await page.waitForSelector('body[data-ready]', { timeout: 60e3 });
    // The page came from the service worker; the model from disk, in a fresh page as the first
    // download was (their load times compare). The engine runs in a worker: while the model
    // loads and a long prompt is processed, the page's main thread keeps drawing frames.
    const busy = await page.evaluate(async ({ url, prompt }) => {
      let [running, last, worst, frames] = [true, 0, 0, 0];
      const frame = (t) => {
        if (last) worst = Math.max(worst, t - last);
        [last, frames] = [t, frames + 1];
        if (running) requestAnimationFrame(frame);
      };
      requestAnimationFrame(frame);
      const model = await window.hearth.load(url, undefined, { ctx: 1024 });
      const loadGap = worst;
      for await (const token of window.hearth.generate(prompt, { raw: true, temperature: 0, maxTokens: 1 })) void token;
      running = false;
      return { model, loadGap, worst, frames, stats: window.hearth.stats() };
    }, { url, prompt: longPrompt });
    const fromDisk = busy.model;
    assert.deepEqual([fromDisk.from, fromDisk.kept], ['cache', true]);
    // Read a range at a time, in a fresh page as the first download was: the heap never held
    // the file.
    assert.ok(fromDisk.heapBytes < fileBytes / 2,
      `the heap grew to ${fromDisk.heapBytes} bytes reading the ${fileBytes}-byte file by ranges`);
    assert.ok(busy.stats.promptTokens >= 512, `a long prompt: ${busy.stats.promptTokens} tokens`);
    assert.ok(busy.frames > 10 && busy.worst < 100,
      `the main thread drew ${busy.frames} frames, the longest gap ${busy.worst.toFixed(0)} ms ` +
      `(${busy.loadGap.toFixed(0)} ms while loading)`);
    assert.deepEqual(await ask(), ids, 'the kept model answers as the downloaded one');
    // And through the page's list of kept models.
    await page.click('#kept-list li button:text("Load")');
    await page.waitForFunction(() => /loaded from this browser/.test(document.getElementById('model-status').textContent),
      null, { timeout: 120e3 });
    const missing = await page.evaluate(() => window.hearth.load('models/elsewhere.gguf').then(() => 'loaded', (e) => e.message));
    assert.match(missing, /could not fetch .*not kept in this browser/);
    await page.screenshot({ path: path.join(artifacts, 'kept-offline.png'), fullPage: true });

    await page.click('#kept-list li button:text("Delete")');
    await page.waitForSelector('#kept', { state: 'hidden' });
    assert.deepEqual(await kept(), []);
    // A file picked from this computer loads a range at a time too, with no network.
    await page.fill('#ctx', '1024');
    await page.setInputFiles('#model-file', model);
    await page.waitForFunction(() => /loaded from the file/.test(document.getElementById('model-status').textContent),
      null, { timeout: 120e3 });
    assert.deepEqual(await ask(), ids, 'the picked file answers as the download did');
    const figures = { networkLoadSeconds: cramped.loadSeconds, cacheLoadSeconds: fromDisk.loadSeconds,
      networkKeptLoadSeconds: downloaded.loadSeconds, bytes: fileBytes,
      heapBytesDownloadedByRanges: cramped.heapBytes, heapBytesReadingKeptCopy: fromDisk.heapBytes, rangedRequests: ranged.requests,
      rangedBytes: ranged.bytes,
      longestFrameGapMs: busy.worst, longestFrameGapLoadingMs: busy.loadGap, promptTokens: busy.stats.promptTokens,
      promptTokensPerSecond: busy.stats.promptTokensPerSecond };
    fs.writeFileSync(path.join(artifacts, 'load.json'), JSON.stringify(figures, null, 1));
    console.log(`load on swiftshader, first in a fresh page: downloaded ${figures.networkLoadSeconds.toFixed(1)} s, ` +
      `from this browser ${figures.cacheLoadSeconds.toFixed(1)} s (downloaded and kept, second in its page: ` +
      `${figures.networkKeptLoadSeconds.toFixed(1)} s); longest frame gap ${busy.worst.toFixed(0)} ms over a ` +
      `${busy.stats.promptTokens}-token prompt at ${busy.stats.promptTokensPerSecond.toFixed(1)} t/s; wasm heap ` +
      `${(cramped.heapBytes / 1e6).toFixed(0)} MB downloading by ranges (${ranged.requests} requests, ${(ranged.bytes / 1e6).toFixed(0)} MB), ` +
      `${(fromDisk.heapBytes / 1e6).toFixed(0)} MB reading the kept copy`);
  } catch (e) {
    await page.screenshot({ path: path.join(artifacts, 'kept-failure.png'), fullPage: true }).catch(() => {});
    console.log(log.join('\n'));
    throw e;
  } finally {
    await browser.close();
    site.close();
  }
});

test('a model larger than twice the heap bound loads from disk with the heap under 128 MiB', { timeout: 15 * 60e3 }, async () => {
  // The default model as f16: 270 MB, more than 2 x 128 MiB, with a 57 MB embedding table that
  // read whole, repacked and uploaded would take 170 MB of heap by itself.
  const f16 = path.join(artifacts, 'SmolLM2-135M-Instruct.F16.gguf');
  const made = spawnSync(hearthBin, ['quantize', model, f16, '--type', 'f16'], { encoding: 'utf8' });
  assert.equal(made.status, 0, `hearth quantize failed: ${made.stderr}`);
  const fileBytes = fs.statSync(f16).size;
  assert.ok(fileBytes > 2 * 128 * 2 ** 20, `${fileBytes} bytes`);
  const { browser, page, log } = await openPage(['--enable-unsafe-webgpu']);
  try {
    await page.waitForSelector('body[data-ready]', { timeout: 60e3 });
    await page.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<input type="file" id="test-file">'));
    await page.setInputFiles('#test-file', f16);
    const run = await page.evaluate(async (prompt) => {
      const model = await window.hearth.load(document.getElementById('test-file').files[0], undefined, { ctx: 256 });
      const ids = [];
      for await (const t of window.hearth.generate(prompt, { raw: true, temperature: 0, maxTokens: 4 })) {
        if (t.id !== null) ids.push(t.id);
      }
      return { model, ids };
    }, prompts[0]);
    assert.ok(run.model.heapBytes < 128 * 2 ** 20,
      `the heap grew to ${run.model.heapBytes} bytes loading a ${fileBytes}-byte file a range at a time`);
    const adapter = await page.evaluate(() => window.hearth.adapterInfo());
    const cli = spawnSync(hearthBin, ['run', '--raw', '--temp', '0', '-n', '4', '--ids', '--model', f16,
      ...(adapter.subgroups ? [] : ['--no-subgroups']), prompts[0]], {
      env: { ...process.env, VK_ICD_FILENAMES: swiftshader, HEARTH_DEVICE: 'SwiftShader' }, encoding: 'utf8',
    });
    assert.equal(cli.status, 0, `hearth run failed: ${cli.stderr}`);
    assert.deepEqual(run.ids, cli.stdout.trim().split(/\s+/).map(Number), 'greedy ids equal the CLI\'s on the same file');
    console.log(`f16 model of ${(fileBytes / 1e6).toFixed(0)} MB loaded from a picked file with a wasm heap of ` +
      `${(run.model.heapBytes / 1e6).toFixed(0)} MB`);
    fs.writeFileSync(path.join(artifacts, 'heap.json'), JSON.stringify({ fileBytes, heapBytes: run.model.heapBytes }));
  } catch (e) {
    console.log(log.join('\n'));
    throw e;
  } finally {
    await browser.close();
    fs.rmSync(f16, { force: true });
  }
});

test('another site imports the module from where it is served and runs the engine', { timeout: 5 * 60e3 }, async () => {
  // The module on 127.0.0.1 with CORS, the page on localhost: two origins.
  const module = await serve(dist, {}, { cors: true });
  const site = await serve(dist, {
    '/elsewhere.html': (request, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end(`<!doctype html><script type="module">import hearth from '${module.url}hearth.js'; window.imported = hearth;</script>`);
    },
  });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: [...quiet, '--enable-unsafe-webgpu'],
  });
  try {
    const page = await browser.newPage();
    await page.goto(site.url.replace('127.0.0.1', 'localhost') + 'elsewhere.html');
    await page.waitForFunction(() => window.imported === window.hearth && window.hearth !== undefined);
    const run = await page.evaluate(async (url) => {
      await window.hearth.load(url, undefined, { keep: false });
      const ids = [];
      for await (const t of window.hearth.generate('Once upon a time,', { raw: true, temperature: 0, maxTokens: 3 })) ids.push(t.id);
      return { ids, origin: location.origin };
    }, `${module.url}models/${modelName}`);
    assert.notEqual(run.origin, new URL(module.url).origin);
    const want = native('Once upon a time,', ['--ids', '--no-subgroups']).stdout.trim().split(/\s+/).map(Number).slice(0, 3);
    assert.deepEqual(run.ids, want);
  } finally {
    await browser.close();
    module.close();
    site.close();
  }
});

test('without WebGPU the page says so and what to do', { timeout: 120e3 }, async () => {
  const { browser, page } = await openPage([]);
  try {
    await page.waitForSelector('#no-webgpu:not([hidden])', { timeout: 60e3 });
    assert.match(await page.textContent('#no-webgpu-why'), /WebGPU.*(Chrome|Chromium|--enable-unsafe-webgpu)/s);
    assert.equal(await page.isDisabled('#load-button'), true, 'nothing to load into');
    const error = await page.evaluate(() => window.hearth.adapterInfo().then(() => 'opened', (e) => e.message));
    assert.match(error, /WebGPU/);
    // The TypeScript declarations the build ships name exactly what the module offers.
    const declarations = fs.readFileSync(path.join(dist, 'hearth.d.ts'), 'utf8');
    const body = /export interface Hearth \{\n([\s\S]*?)\n\}/.exec(declarations)[1];
    const declared = [...body.matchAll(/^ {2}(\w+)[(:]/gm)].map((m) => m[1]).sort();
    assert.deepEqual(declared, (await page.evaluate(() => Object.keys(window.hearth))).sort());
    await page.screenshot({ path: path.join(artifacts, 'no-webgpu.png'), fullPage: true });
  } finally {
    await browser.close();
  }
});

/** `hearth serve --web web/dist` with the default model on a free port (the machine's own adapter). */
async function hearthServe(extra = []) {
  const child = spawn(hearthBin, ['serve', '--web', dist, '--port', '0', '--model', model, ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (data) => {
      said += data;
      // A whole address: stderr may arrive cut anywhere (once as "http://127").
      const found = /listening on (http:\/\/\S+)\s/.exec(said);
      if (found) resolve(`${found[1]}/`);
    });
    child.on('exit', (code) => reject(new Error(`hearth serve exited (${code}): ${said}`)));
  });
  return { url, close: () => child.kill('SIGINT') };
}

test('served by hearth serve, a browser without WebGPU chats through the server', { timeout: 10 * 60e3 }, async () => {
  const key = 'a-key-for-the-page';
  const hearth = await hearthServe(['--api-key', key]);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true, args: quiet,
  });
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`page error: ${e.message}`));
  try {
    await page.goto(hearth.url);
    await page.waitForSelector('body[data-ready]', { timeout: 120e3 });
    assert.equal(await page.isVisible('#no-webgpu'), false, 'no WebGPU needed');
    assert.match(await page.textContent('#model-status'), /SmolLM2|hearth/i);
    // A server started with --api-key: without it the page says where to give it, then uses it.
    const refused = await page.evaluate(() => window.hearth.chat.completions.create({
      messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 }).then(() => 'answered', (e) => e.message));
    assert.match(refused, /needs an API key.*Settings/);
    await page.click('details summary');
    await page.fill('#api-key', key);
    await page.dispatchEvent('#api-key', 'change');
    await page.click('details summary');
    assert.equal(await page.evaluate(() => localStorage.getItem('hearth-api-key')), key, 'kept for next time');
    await page.waitForFunction(() => /smollm2/i.test(document.getElementById('model-status').textContent));
    const prompt = prompts[0];
    const shown = await askInThePage(page, prompt, 5 * 60e3);
    // The server's greedy text is the CLI's on the same (default) adapter.
    assert.equal(shown, native(prompt, [], {}).stdout.replace(/\n$/, ''));
    assert.match(await page.textContent('#speed'), /t\/s/);
    // OpenAI's shape from the page, over the server's API.
    const whole = await page.evaluate(() => window.hearth.chat.completions.create({
      messages: [{ role: 'user', content: 'Name a colour.' }], temperature: 0, max_tokens: 8 }));
    assert.ok(whole.choices[0].message.content.length > 0 && whole.usage.completion_tokens > 0, JSON.stringify(whole));
    assert.equal(whole.model, await page.evaluate(() => window.hearth.server()));
    await page.screenshot({ path: path.join(artifacts, 'served-by-hearth.png'), fullPage: true });
  } catch (e) {
    await page.screenshot({ path: path.join(artifacts, 'served-by-hearth-failure.png'), fullPage: true }).catch(() => {});
    console.log(`${hearth.url}\n${log.join('\n')}`);
    throw e;
  } finally {
    await browser.close();
    hearth.close();
  }
});
