// The BPF filesystem holds pinned maps; it must be mounted where pins go.
import { mkdirSync } from 'node:fs';

import { native } from './native.js';

export const DEFAULT_BPFFS = '/sys/fs/bpf';

export function isBpffs(path: string): boolean {
  return native().isBpffs(path);
}

/** Makes sure `root` is on a BPF filesystem (mounting one there if not) and `dir` exists in it. */
export function ensureBpffs(root: string = DEFAULT_BPFFS, dir?: string): void {
  if (!isBpffs(root)) {
    mkdirSync(root, { recursive: true });
    native().mountBpffs(root);
  }
  if (dir) mkdirSync(dir, { recursive: true, mode: 0o700 });
}

export function libbpfVersion(): string {
  return native().libbpfVersion();
}
