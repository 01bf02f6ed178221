// Where a pod's network namespace may be: CNI_NETNS names a file the agent enters as root and
// creates interfaces in, so a path elsewhere (the node's own namespace, /proc/1/ns/net, any
// file) would let a caller have the agent rewire the wrong network. Runtimes keep pod
// namespaces in a few places only: containerd (/var/run/netns/cni-<uuid>), CRI-O
// (/var/run/netns/<uuid>, pinned by pinns), podman (/run/netns/netns-<uuid>), cnitool and
// `ip netns` (/var/run/netns/<name>), and runtimes that do not pin one pass the container's
// /proc/<pid>/ns/net. Symlinks and `..` are resolved before the check, so the place is where
// the path leads, not how it is spelled.
import { lstat, readlink, realpath, stat, statfs } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, posix } from 'node:path';

import { CniErrorCode, CniError } from './errors.js';

/** The directories whose direct entries may be pod namespaces, unless configured otherwise. */
export const DEFAULT_NETNS_DIRS: readonly string[] = ['/var/run/netns', '/run/netns'];

/** Linux's PATH_MAX, with its terminating NUL. */
const PATH_MAX = 4095;
/** statfs(2) f_type of the filesystem namespace files live on. */
const NSFS_MAGIC = 0x6e736673;
const PROC_NETNS = /^\/proc\/[1-9]\d{0,9}(\/task\/[1-9]\d{0,9})?\/ns\/net$/;

/** Checks a directory setting: absolute, normalised, and not the root itself. */
export function netnsDirProblem(dir: string): string | undefined {
  if (!isAbsolute(dir)) return 'must be an absolute path';
  if (dir.includes('\0')) return 'must not contain NUL';
  if (posix.normalize(dir) !== dir || (dir.length > 1 && dir.endsWith('/')))
    return 'must be a normalised path (no ".", "..", "//" or trailing "/")';
  if (dir === '/') return 'must not be "/" (every top-level file would pass)';
  if (dir === '/proc' || dir.startsWith('/proc/')) return 'must not be under /proc';
  return undefined;
}

/**
 * Why `path` (absolute, symlinks and `..` already resolved) is not a place where runtimes keep
 * a pod's network namespace, or undefined when it is: a direct entry of one of `dirs` (resolved
 * too), or /proc/<pid>/ns/net (/proc/<pid>/task/<tid>/ns/net).
 */
export function netnsPlaceProblem(path: string, dirs: readonly string[]): string | undefined {
  if (path === '') return 'must not be empty';
  if (path.includes('\0')) return 'must not contain NUL';
  if (path.length > PATH_MAX) return `must be at most ${PATH_MAX} bytes`;
  if (!isAbsolute(path)) return 'must be an absolute path';
  if (posix.normalize(path) !== path || path.endsWith('/'))
    return 'must be a normalised path (no ".", "..", "//" or trailing "/")';
  if (PROC_NETNS.test(path)) return undefined;
  const dir = dirname(path);
  const name = basename(path);
  if (name !== '' && name !== '.' && name !== '..' && dirs.includes(dir)) return undefined;
  return `must be a namespace in ${[...dirs, '/proc/<pid>/ns/net'].join(', ')} (--cni-netns-dirs)`;
}

export interface NetnsPolicy {
  /** Directories whose direct entries may be pod namespaces. */
  dirs: readonly string[];
  /** Namespaces a pod must never be wired into: the node's, the agent's own. */
  forbidden: readonly string[];
}

export interface ResolvedNetns {
  /** Where the path leads. */
  path: string;
  /** Whether something is there. */
  exists: boolean;
}

const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/** As the kernel follows symlinks before it gives up with ELOOP. */
const MAX_LINKS = 40;

/**
 * Resolves symlinks and `..`. /proc/<pid>/ns/net is a link whose target ("net:[4026531993]")
 * is no path, so realpath(3) fails on it (and on any link to it), and a DEL's namespace may be
 * gone: then the directory is resolved, the name kept, and a link found there followed by hand.
 */
export async function resolveNetnsPath(path: string): Promise<ResolvedNetns> {
  let current = path;
  for (let hop = 0; hop <= MAX_LINKS; hop++) {
    try {
      return { path: await realpath(current), exists: true };
    } catch (err) {
      if (errnoOf(err) === 'ENAMETOOLONG') return { path: posix.normalize(current), exists: false };
    }
    let dir: string;
    try {
      dir = await realpath(dirname(current));
    } catch {
      return { path: posix.normalize(current), exists: false };
    }
    const resolved = posix.normalize(join(dir, basename(current)));
    if (PROC_NETNS.test(resolved)) return { path: resolved, exists: true };
    let st;
    try {
      st = await lstat(resolved);
    } catch {
      return { path: resolved, exists: false };
    }
    if (!st.isSymbolicLink()) return { path: resolved, exists: true };
    const target = await readlink(resolved).catch(() => undefined);
    // a link that cannot be read leads nowhere
    if (target === undefined) return { path: resolved, exists: false };
    current = isAbsolute(target) ? target : join(dirname(resolved), target);
  }
  return { path: posix.normalize(current), exists: false };
}

async function resolvedDirs(dirs: readonly string[]): Promise<string[]> {
  const out = new Set<string>();
  for (const d of dirs) {
    out.add(d);
    out.add(await realpath(d).catch(() => d));
  }
  return [...out];
}

function refusal(netns: string, why: string): CniError {
  return new CniError(
    CniErrorCode.INVALID_ENVIRONMENT,
    `CNI_NETNS: Invalid value: ${JSON.stringify(netns)}: ${why}`,
  );
}

/**
 * The agent's check of CNI_NETNS, for every way a request arrives. ADD and CHECK need a network
 * namespace there that is not the node's own. DEL does not enter the namespace and may name one
 * that is gone or half torn down (a runtime retries a failing DEL forever), so only the place is
 * checked. Throws CNI error 4 naming CNI_NETNS.
 */
export async function checkNetns(
  netns: string,
  command: 'ADD' | 'CHECK' | 'DEL',
  policy: NetnsPolicy,
): Promise<void> {
  // what needs no file system access first
  const lexical = !isAbsolute(netns)
    ? 'must be an absolute path'
    : netns.includes('\0')
      ? 'must not contain NUL'
      : netns.length > PATH_MAX
        ? `must be at most ${PATH_MAX} bytes`
        : undefined;
  if (lexical) throw refusal(netns, lexical);
  const resolved = await resolveNetnsPath(netns);
  const problem = netnsPlaceProblem(resolved.path, await resolvedDirs(policy.dirs));
  if (problem) {
    const via = resolved.path === netns ? '' : ` (it leads to ${resolved.path})`;
    throw refusal(netns, `${problem}${via}`);
  }
  if (command === 'DEL') return;
  if (!resolved.exists) throw refusal(netns, 'no such namespace');
  let st;
  try {
    if ((await statfs(resolved.path)).type !== NSFS_MAGIC)
      throw refusal(netns, 'is not a network namespace');
    st = await stat(resolved.path);
  } catch (err) {
    if (err instanceof CniError) throw err;
    throw refusal(netns, `cannot be read: ${(err as Error).message}`);
  }
  for (const f of policy.forbidden) {
    const other = await stat(f).catch(() => undefined);
    if (other && other.dev === st.dev && other.ino === st.ino)
      throw refusal(netns, "is the node's own network namespace, not a pod's");
  }
}
