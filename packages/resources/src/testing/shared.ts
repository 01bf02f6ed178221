// The manifests and configuration users bring live in the repository's `fixtures/` (a copy of
// the team's shared fixtures, so a clone is self-contained); CILIATE_FIXTURES_DIR overrides it.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { repoRoot } from '../crd/paths.js';

export function fixturesDir(): string {
  const dir = resolve(process.env.CILIATE_FIXTURES_DIR ?? join(repoRoot(), 'fixtures'));
  if (!existsSync(join(dir, 'seed-manifests'))) {
    throw new Error(`${dir} has no seed-manifests/ directory (CILIATE_FIXTURES_DIR overrides it)`);
  }
  return dir;
}

export interface SeedManifest {
  readonly file: string;
  readonly text: string;
}

export function seedManifests(): SeedManifest[] {
  const dir = join(fixturesDir(), 'seed-manifests');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml') || f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, text: readFileSync(join(dir, file), 'utf8') }));
}
