// A tiny static file server for web/, for the SDK self-check that runs without the SFU.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from './server.mjs';

const WEB_DIR = path.join(REPO_ROOT, 'web');
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };

/** Serves web/ on 127.0.0.1:`port` (0 = any free port); resolves with {url, close()}. */
export function serveWeb(port = 0) {
  const server = createServer(async (req, res) => {
    const name = new URL(req.url, 'http://x').pathname.replace(/^\/+/, '') || 'index.html';
    if (!/^(sdk\/)?[a-z-]+\.(html|js|css)$/.test(name)) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(path.join(WEB_DIR, name));
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(name)] }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}
