// Copies the console's page and stylesheet next to the browser code that tsc compiled into
// dist/web (web/tsconfig.json): the server serves that folder (src/console/assets.ts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'web');
fs.mkdirSync(out, { recursive: true });
for (const file of ['index.html', 'console.css']) fs.copyFileSync(path.join(root, 'web', file), path.join(out, file));
