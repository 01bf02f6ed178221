#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('ciliate: not built yet; run scripts/setup.sh (or npm run build) first');
  process.exit(2);
}
await import(main);
