// The page's model addresses, without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelUrl } from '../model-source.js';

const page = 'http://127.0.0.1:8000/index.html';

test('Hugging Face files, written as the CLI takes them or bare, become resolve URLs', () => {
  const want = 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/main/qwen2.5-0.5b-instruct-q4_k_m.gguf';
  assert.equal(resolveModelUrl('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf', page), want);
  assert.equal(resolveModelUrl(' Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf ', page), want);
  assert.equal(resolveModelUrl('o/r/sub dir/m.gguf@v1.0', page), 'https://huggingface.co/o/r/resolve/v1.0/sub%20dir/m.gguf');
});

test('URLs and paths on the page\'s site stay what they are', () => {
  assert.equal(resolveModelUrl('models/m.gguf', page), 'http://127.0.0.1:8000/models/m.gguf');
  assert.equal(resolveModelUrl('./a/b/m.gguf', page), 'http://127.0.0.1:8000/a/b/m.gguf');
  assert.equal(resolveModelUrl('/a/b/m.gguf', page), 'http://127.0.0.1:8000/a/b/m.gguf');
  assert.equal(resolveModelUrl('https://example.org/x/y/m.gguf', page), 'https://example.org/x/y/m.gguf');
});

test('a Hugging Face address that cannot be one is refused with how to write it', () => {
  assert.throws(() => resolveModelUrl('hf:owner/repo', page), /not a Hugging Face file: write owner\/repo\//);
  assert.throws(() => resolveModelUrl('o/r/../m.gguf', page), /not a Hugging Face file/);
  assert.throws(() => resolveModelUrl('o/r/m.gguf@bad rev', page), /"bad rev" may only use letters/);
  assert.throws(() => resolveModelUrl('  ', page), /no model address/);
});
