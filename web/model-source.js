// Where a model named in the page comes from: a URL (absolute, or relative to the page), or a
// file in a Hugging Face repository, written as the CLI takes it (`hf:owner/repo/file.gguf`,
// optionally `@revision`) or as `owner/repo/file.gguf` (three or more parts with no scheme; a
// path on the page's own site that deep is written `./a/b/c.gguf` or `/a/b/c.gguf`).

const SIMPLE = /^[A-Za-z0-9._-]+$/;

/** The https:// URL of a Hugging Face file, or null when `text` does not name one. Throws when
 * it is written as one but cannot be. */
function huggingFaceUrl(text) {
  const explicit = text.startsWith('hf:');
  const spec = explicit ? text.slice(3) : text;
  if (!explicit && (/^[a-z][a-z0-9+.-]*:/i.test(text) || /^[./]/.test(text) || spec.split('/').length < 3)) return null;
  const at = spec.lastIndexOf('@');
  const [path, revision] = at < 0 ? [spec, 'main'] : [spec.slice(0, at), spec.slice(at + 1)];
  const [owner, repo, ...file] = path.split('/');
  const usage = 'write owner/repo/path/to/file.gguf, optionally followed by @revision';
  if (!owner || !repo || file.length === 0 || file.some((s) => !s || s === '.' || s === '..')) {
    throw new Error(`"${text}" is not a Hugging Face file: ${usage}`);
  }
  for (const name of [owner, repo, revision]) {
    if (!SIMPLE.test(name)) throw new Error(`"${text}": "${name}" may only use letters, digits, '.', '_' and '-'`);
  }
  const parts = file.map(encodeURIComponent).join('/');
  return `https://huggingface.co/${owner}/${repo}/resolve/${revision}/${parts}`;
}

/** The file name at the end of an absolute URL, as a person would read it. */
export function fileName(url) {
  return decodeURIComponent(new URL(url).pathname.split('/').pop() || 'model.gguf');
}

/** The absolute URL a model address means, `base` being the page's address. */
export function resolveModelUrl(text, base) {
  const trimmed = String(text).trim();
  if (!trimmed) throw new Error('no model address: give a URL or owner/repo/file.gguf');
  return huggingFaceUrl(trimmed) ?? new URL(trimmed, base).href;
}
