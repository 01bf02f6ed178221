// Where the programs the lab starts live. The services are this package's dependencies and each
// exports its entry point (`@ciliate/ipam/main`, `@ciliate/datapath/cni`, ...), so they are found
// the way any import is found, not by where they happen to sit in the repository; the lab's own
// programs sit next to this module.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { LabError } from './plan.js';

/** The repository the lab was built in (its working directory, the pinned tool versions). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The file a package export names, or undefined when it is not there (not built). */
export function findEntry(specifier: string): string | undefined {
  let file: string;
  try {
    file = fileURLToPath(import.meta.resolve(specifier));
  } catch {
    return undefined;
  }
  return existsSync(file) ? file : undefined;
}

/** The file a package export names; a clear error when the package is not built. */
export function entry(specifier: string): string {
  const file = findEntry(specifier);
  if (file === undefined) {
    throw new LabError(
      'failed',
      `${specifier} is not there: build the tree first (npx turbo run build --filter=@ciliate/lab)`,
    );
  }
  return file;
}

/** One of the lab's own files, by its path relative to dist/ (where this module is built). */
export function ownFile(path: string): string {
  return fileURLToPath(new URL(path, import.meta.url));
}
