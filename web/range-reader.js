// Reading a model file over the network a range at a time, for a download that is not kept:
// the engine asks for one tensor, or one range of a large one's rows, at a time, and not in
// the file's order (it loads layer by layer, tensor by tensor, and many files store their
// layers as blk.0, blk.1, blk.10, … and a layer's tensors alphabetically). Each request costs a
// round trip (two where a site redirects to its storage), so the file is fetched in aligned
// blocks, several together where a read spans them, and the most recently used blocks are
// kept for the reads that follow: a layer's tensors usually share blocks. The kept blocks are
// the worker's memory, not the wasm heap's, and bounded.

export const BLOCK_BYTES = 4 * 2 ** 20;
export const KEPT_BLOCKS = 16;

/**
 * A synchronous reader `(offset, len) => Uint8Array` of a file of `total` bytes whose ranges
 * `fetchRange(first, last)` gives (inclusive byte positions). `told(bytes)` hears of each
 * fetch.
 */
export function rangeReader(fetchRange, total, told = () => {}, { block = BLOCK_BYTES, kept = KEPT_BLOCKS } = {}) {
  // Block index → its bytes; a Map iterates in insertion order, so the first is the least
  // recently used.
  const blocks = new Map();
  const fetchBlocks = (first, last) => {
    const start = first * block;
    const bytes = fetchRange(start, Math.min(total, (last + 1) * block) - 1);
    told(bytes.length);
    for (let b = first; b <= last; b++) blocks.set(b, bytes.subarray((b - first) * block, (b - first + 1) * block));
  };
  return (offset, len) => {
    const end = offset + len;
    if (offset < 0 || len < 0 || end > total) throw new Error(`bytes ${offset}..${end} are outside the ${total}-byte file`);
    const first = Math.floor(offset / block);
    const last = Math.max(first, Math.ceil(end / block) - 1);
    for (let b = first; b <= last; ) {
      if (blocks.has(b)) {
        b++;
        continue;
      }
      let through = b;
      while (through < last && !blocks.has(through + 1)) through++;
      fetchBlocks(b, through);
      b = through + 1;
    }
    for (let b = first; b <= last; b++) {
      const bytes = blocks.get(b);
      blocks.delete(b);
      blocks.set(b, bytes);
    }
    let out;
    if (first === last) {
      out = blocks.get(first).subarray(offset - first * block, end - first * block);
    } else {
      out = new Uint8Array(len);
      for (let b = first; b <= last; b++) {
        const from = Math.max(offset, b * block);
        const to = Math.min(end, (b + 1) * block);
        out.set(blocks.get(b).subarray(from - b * block, to - b * block), from - offset);
      }
    }
    while (blocks.size > kept) blocks.delete(blocks.keys().next().value);
    return out;
  };
}
