// Test fixtures shared between Ciliate's repositories live in a `shared/` directory beside the
// repository (/work/shared next to /work/main). A worktree sits deeper, so look in every parent of
// the repository root; CILIATE_SHARED_DIR overrides the search.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { repoRoot } from '../crd/paths.js';

export function sharedDir(): string {
  const fromEnv = process.env.CILIATE_SHARED_DIR;
  if (fromEnv) {
    if (!existsSync(join(fromEnv, 'fixtures'))) {
      throw new Error(`CILIATE_SHARED_DIR=${fromEnv} has no fixtures/ directory`);
    }
    return resolve(fromEnv);
  }
  let dir = repoRoot();
  for (;;) {
    const candidate = join(dir, 'shared');
    if (existsSync(join(candidate, 'fixtures'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(
    `no shared/fixtures directory found in any parent of ${repoRoot()}; set CILIATE_SHARED_DIR to the shared/ directory`,
  );
}

export interface SeedManifest {
  readonly file: string;
  readonly text: string;
}

export function seedManifests(): SeedManifest[] {
  const dir = join(sharedDir(), 'fixtures', 'seed-manifests');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml') || f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, text: readFileSync(join(dir, file), 'utf8') }));
}
