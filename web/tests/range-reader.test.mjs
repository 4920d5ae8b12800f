// Reading a download a range at a time (range-reader.js), without a browser: the bytes are the
// file's, and an engine-like order of reads costs few requests and little more than the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLOCK_BYTES, rangeReader } from '../range-reader.js';

/** A file of `total` bytes with every byte known, and a fetcher of its ranges that counts. */
function served(total) {
  const file = new Uint8Array(total).map((_, i) => (i * 7 + (i >> 11)) & 255);
  const seen = { requests: 0, bytes: 0 };
  const fetchRange = (first, last) => {
    assert.ok(first >= 0 && first <= last && last < total, `bytes ${first}..=${last} of ${total}`);
    seen.requests += 1;
    seen.bytes += last - first + 1;
    return file.slice(first, last + 1);
  };
  return { file, seen, fetchRange };
}

test('reads give the file\'s bytes: within a block, across blocks, at its end', () => {
  const total = 5 * BLOCK_BYTES + 12345;
  const { file, fetchRange } = served(total);
  const read = rangeReader(fetchRange, total);
  let state = 1;
  const random = (n) => (state = (state * 1103515245 + 12345) % 2 ** 31) % n;
  const reads = [[0, 16], [BLOCK_BYTES - 5, 10], [total - 100, 100], [3, 2 * BLOCK_BYTES + 7], [total - 1, 1], [17, 0]];
  for (let i = 0; i < 200; i++) {
    const offset = random(total);
    reads.push([offset, random(Math.min(total - offset, 3 * BLOCK_BYTES) + 1)]);
  }
  for (const [offset, len] of reads) {
    assert.deepEqual(read(offset, len), file.subarray(offset, offset + len), `${len} bytes at ${offset}`);
  }
  assert.throws(() => read(total - 10, 11), /outside the \d+-byte file/);
});

test('an engine\'s order of reads costs few requests and little more than the file', () => {
  // As the default model's file: a 30 MB embedding table, then 30 layers stored as blk.0,
  // blk.1, blk.10, …, each layer's tensors alphabetically; the engine reads the layers in
  // number order and each layer's tensors in its own order, then the embedding in ranges.
  const sizes = { attn_k: 69120, attn_norm: 2304, attn_output: 207360, attn_q: 207360, attn_v: 69120,
    ffn_down: 552960, ffn_gate: 552960, ffn_norm: 2304, ffn_up: 552960 };
  const engineOrder = ['attn_norm', 'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_norm', 'ffn_gate', 'ffn_up', 'ffn_down'];
  const header = 1785664;
  const embedding = 30081024;
  const where = new Map();
  let at = header + embedding;
  const layers = [...Array(30).keys()];
  for (const layer of [...layers].sort((a, b) => String(a).localeCompare(String(b)))) {
    for (const name of Object.keys(sizes).sort()) {
      where.set(`${layer}.${name}`, at);
      at += sizes[name];
    }
  }
  const total = at;
  const { file, seen, fetchRange } = served(total);
  const read = rangeReader(fetchRange, total);
  const reads = [[0, 2 ** 20], [0, 2 ** 21]];
  for (const layer of layers) for (const name of engineOrder) reads.push([where.get(`${layer}.${name}`), sizes[name]]);
  for (let offset = header; offset < header + embedding; offset += 2 ** 23) {
    reads.push([offset, Math.min(2 ** 23, header + embedding - offset)]);
  }
  for (const [offset, len] of reads) assert.deepEqual(read(offset, len), file.subarray(offset, offset + len));
  assert.ok(seen.requests <= Math.ceil(total / BLOCK_BYTES) + 8, `${seen.requests} requests for ${reads.length} reads`);
  assert.ok(seen.bytes < 1.2 * total, `${seen.bytes} bytes fetched for a ${total}-byte file`);
});

test('a request that fails fails the read with its reason', () => {
  const read = rangeReader(() => {
    throw new Error('the download of m.gguf broke at byte 0: HTTP 503');
  }, 1000);
  assert.throws(() => read(0, 10), /HTTP 503/);
});
