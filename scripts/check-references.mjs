// Fails naming every workspace package whose tsconfig.json references disagree with its
// @ciliate/* dependencies (the rule and the check: packages/testkit/src/references.ts).
import { fileURLToPath } from 'node:url';

import { referenceMismatches } from '@ciliate/testkit';

const problems = referenceMismatches(fileURLToPath(new URL('..', import.meta.url)));
for (const p of problems) console.error(p);
if (problems.length > 0) {
  console.error(`${problems.length} tsconfig reference(s) disagree with package.json`);
  process.exit(1);
}
console.log('tsconfig references agree with package.json in every workspace package');
