// Adds up the .test-results.json that each package's test run leaves behind.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for (const group of ['packages', 'services', 'apps']) {
  const dir = join(root, group);
  if (!existsSync(dir)) continue;
  for (const pkg of readdirSync(dir)) {
    const file = join(dir, pkg, '.test-results.json');
    if (!existsSync(file)) continue;
    const r = JSON.parse(readFileSync(file, 'utf8'));
    passed += r.passed;
    failed += r.failed;
    skipped += r.skipped;
    for (const f of r.failures ?? []) failures.push(`${group}/${pkg}: ${f}`);
  }
}
if (failures.length > 0) {
  console.log('\nfailed tests:');
  for (const f of failures) console.log(`  ${f}`);
}
console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
