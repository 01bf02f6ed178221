// Builds the native CNI executable (src/cni/shim.c) into dist/bin/ciliate-cni; run by the
// package build after tsc. Compiled in: the node that runs this build and the absolute path of
// the full plugin's entry (dist/cni/main.js), the executable's last resort when neither
// $CILIATE_CNI_NODE / $CILIATE_CNI_FALLBACK nor the entry next to its own real path exist.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../../src/cni/shim.c', import.meta.url));
const entry = fileURLToPath(new URL('./main.js', import.meta.url));
const out = fileURLToPath(new URL('../bin/ciliate-cni', import.meta.url));

/** A C string literal for a -D definition (paths may hold quotes or backslashes). */
const cString = (s: string): string => JSON.stringify(s);

mkdirSync(dirname(out), { recursive: true });
execFileSync(
  process.env.CC ?? 'gcc',
  [
    '-Wall',
    '-Wextra',
    '-Werror',
    '-O2',
    `-DCILIATE_NODE=${cString(process.execPath)}`,
    `-DCILIATE_FALLBACK=${cString(entry)}`,
    '-o',
    out,
    source,
  ],
  { stdio: 'inherit' },
);
