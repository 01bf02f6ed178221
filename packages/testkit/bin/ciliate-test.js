#!/usr/bin/env node
// Thin launcher so the bin exists before the first build; the runner itself is compiled TypeScript.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const runner = fileURLToPath(new URL('../dist/runner.js', import.meta.url));
if (!existsSync(runner)) {
  console.error('ciliate-test: @ciliate/testkit is not built yet (run `npm run build` first)');
  process.exit(2);
}
const { main } = await import(runner);
process.exitCode = await main(process.argv.slice(2));
