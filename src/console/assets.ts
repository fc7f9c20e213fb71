import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

/** Where the build puts the console's files: dist/web (web/tsconfig.json and scripts/copy-web-assets.mjs). */
export const WEB_DIR = path.resolve(__dirname, '..', '..', 'web');

/** One file as it is served. */
export interface Asset {
  body: Buffer;
  /** The body gzipped once at start, for clients that accept it (when it is smaller). */
  gzipped: Buffer | undefined;
  contentType: string;
  etag: string;
  cacheControl: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The page's placeholder for the assets' folder: "/assets/<version>". */
const ASSETS_PLACEHOLDER = /\{\{ASSETS\}\}/g;
/**
 * The page's placeholder for a modulepreload link per module: the browser then fetches every
 * module at once, instead of discovering them import by import (three round trips deep).
 */
const PRELOAD_PLACEHOLDER = /^[ \t]*\{\{MODULE_PRELOADS\}\}\n/m;

/**
 * The console's files, read once at start and served from memory. Everything but the page lives
 * under /assets/<version>/, where <version> is a hash of all the files: those URLs never change
 * content, so browsers cache them for a year without asking again ("immutable"), and a new build
 * gets new URLs. The page itself names the current version, so it is revalidated on every load
 * (no-cache, with an ETag: a 304 when nothing changed). The modules import each other by relative
 * paths, which stay inside the versioned folder; no bundler is needed.
 */
export class ConsoleAssets {
  readonly version: string;
  readonly page: Asset;
  private readonly files = new Map<string, Asset>();

  constructor(dir: string = WEB_DIR) {
    const names = fs.readdirSync(dir).filter((name) => name !== 'index.html' && CONTENT_TYPES[path.extname(name)] !== undefined);
    const contents = new Map(names.sort().map((name) => [name, fs.readFileSync(path.join(dir, name))]));
    const hash = createHash('sha256');
    for (const [name, body] of contents) hash.update(name).update('\0').update(body).update('\0');
    this.version = hash.digest('hex').slice(0, 16);
    for (const [name, body] of contents) this.files.set(name, asset(name, body, 'public, max-age=31536000, immutable'));
    const preloads = [...contents.keys()]
      .filter((name) => name.endsWith('.js') && name !== 'main.js')
      .map((name) => `  <link rel="modulepreload" href="/assets/${this.version}/${name}">\n`)
      .join('');
    const page = fs
      .readFileSync(path.join(dir, 'index.html'), 'utf8')
      .replace(PRELOAD_PLACEHOLDER, preloads)
      .replace(ASSETS_PLACEHOLDER, `/assets/${this.version}`);
    this.page = asset('index.html', Buffer.from(page), 'no-cache');
  }

  /** A file under /assets/<version>/, or undefined (another version, or no such file). */
  file(version: string, name: string): Asset | undefined {
    return version === this.version ? this.files.get(name) : undefined;
  }
}

function asset(name: string, body: Buffer, cacheControl: string): Asset {
  const gzipped = zlib.gzipSync(body, { level: 9 });
  return {
    body,
    gzipped: gzipped.byteLength < body.byteLength ? gzipped : undefined,
    contentType: CONTENT_TYPES[path.extname(name)] ?? 'application/octet-stream',
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    cacheControl,
  };
}
