// `npm run gen:crds -w @ciliate/resources`: writes infra/crds/<plural>.cilium.io.yaml from the
// schemas and removes CRD files of kinds that are gone. The golden test (crd.test.ts) fails when
// the checked-in files differ from what this writes.

import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

import { generateCrds } from './generate.js';
import { crdDir, repoRoot } from './paths.js';

function main(): void {
  const dir = crdDir();
  mkdirSync(dir, { recursive: true });
  const generated = generateCrds();
  const wanted = new Set(generated.map((g) => g.fileName));
  for (const g of generated) {
    const file = join(dir, g.fileName);
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== g.yaml) {
      writeFileSync(file, g.yaml);
      console.log(`wrote ${relative(repoRoot(), file)}`);
    }
  }
  for (const f of readdirSync(dir)) {
    if (f.endsWith('.cilium.io.yaml') && !wanted.has(f)) {
      rmSync(join(dir, f));
      console.log(`removed ${relative(repoRoot(), join(dir, f))}`);
    }
  }
  console.log(`${generated.length} CRDs up to date in ${relative(repoRoot(), dir)}`);
}

main();
