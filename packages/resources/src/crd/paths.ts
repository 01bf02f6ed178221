// Where the checked-in CRDs live: <repo>/infra/crds, found from this package's location
// (packages/resources/dist/crd at run time).

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export function repoRoot(): string {
  return resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
}

export function crdDir(): string {
  return resolve(repoRoot(), 'infra/crds');
}
