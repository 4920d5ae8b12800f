// A static file server for web/dist on 127.0.0.1 (any free port), as any static host would
// serve the page: files only, with their lengths, so the page can show download progress.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.gguf': 'application/octet-stream',
};

// `routes` maps a path to a handler of its own, for responses no file gives; `cors`: files may
// be read by pages of any origin (as a CDN serves a module).
export async function serve(root, routes = {}, { cors = false } = {}) {
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
      response.writeHead(200, {
        'content-type': types[path.extname(target)] ?? 'application/octet-stream',
        'content-length': stat.size,
        ...(cors ? { 'access-control-allow-origin': '*' } : {}),
      });
      fs.createReadStream(target).pipe(response);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  // close() also drops open keep-alive connections: the site is gone, as when the network is off.
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}
