// A static file server for web/dist on 127.0.0.1 (any free port), as any static host would
// serve the page: files only, with their lengths, so the page can show download progress, and
// a single byte range of one when asked (as static hosts and Hugging Face answer).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.gguf': 'application/octet-stream',
};

// `routes` maps a path to a handler of its own, for responses no file gives; `cors`: files may
// be read by pages of any origin (as a CDN serves a module); `ranges: false`: a server that
// ignores Range and always sends the whole file. `rangesSent` counts each path's answers to
// ranges and their bytes.
export async function serve(root, routes = {}, { cors = false, ranges = true } = {}) {
  const rangesSent = new Map();
  const server = http.createServer((request, response) => {
    const url = new URL(request.url, 'http://localhost');
    if (routes[url.pathname]) {
      routes[url.pathname](request, response);
      return;
    }
    const file = path.join(root, path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, ''));
    const target = file.endsWith(path.sep) ? path.join(file, 'index.html') : file;
    fs.stat(target, (err, stat) => {
      if (err || !stat.isFile() || !target.startsWith(root)) {
        response.writeHead(404).end('not found');
        return;
      }
      const headers = {
        'content-type': types[path.extname(target)] ?? 'application/octet-stream',
        ...(ranges ? { 'accept-ranges': 'bytes' } : {}),
        ...(cors ? { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'content-range' } : {}),
      };
      const range = ranges && /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
      if (range) {
        const first = Number(range[1]);
        const last = Math.min(stat.size - 1, range[2] ? Number(range[2]) : stat.size - 1);
        if (first > last) {
          response.writeHead(416, { ...headers, 'content-range': `bytes */${stat.size}` }).end();
          return;
        }
        const so = rangesSent.get(url.pathname) ?? { requests: 0, bytes: 0 };
        rangesSent.set(url.pathname, { requests: so.requests + 1, bytes: so.bytes + last - first + 1 });
        response.writeHead(206, { ...headers, 'content-length': last - first + 1, 'content-range': `bytes ${first}-${last}/${stat.size}` });
        fs.createReadStream(target, { start: first, end: last }).pipe(response);
        return;
      }
      response.writeHead(200, { ...headers, 'content-length': stat.size });
      fs.createReadStream(target).pipe(response);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // close() also drops open keep-alive connections: the site is gone, as when the network is off.
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    rangesSent,
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}
