// The agent's state on disk (endpoint records, the standalone address pool) and its CNI socket
// are for root alone: they name every pod, its address and its namespace, and the socket wires
// pods. Directories are 0700, files and sockets 0600, from the moment they exist (a mode given
// at creation, a umask around bind) and again at start for what an older version left looser.
import {
  chmodSync,
  closeSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) as 0700, or makes an existing one 0700. A directory
 * others share (world-writable, such as /tmp) is refused: the setting that names it is wrong,
 * and taking it over would break everyone else.
 */
export function privateDir(dir: string, setting = 'stateDir'): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const st = statSync(dir);
  if (!st.isDirectory()) throw new Error(`${setting}: ${dir} is not a directory`);
  if ((st.mode & 0o1002) !== 0)
    throw new Error(
      `${setting}: ${dir} is shared (world-writable or sticky); give the datapath a directory of its own`,
    );
  if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(dir, PRIVATE_DIR_MODE);
}

/** Writes `file` atomically (a temporary file renamed over it), readable by its owner only. */
export function writePrivateFile(file: string, data: string): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, 'w', PRIVATE_FILE_MODE);
  try {
    // the mode of open(2) applies only to a new file: a temporary one left by a crash keeps its own
    fchmodSync(fd, PRIVATE_FILE_MODE);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * Makes `dir` and everything under it (to `depth` levels) owner-only: directories 0700, files
 * and sockets 0600. Symbolic links are left alone (chmod would follow them out of the tree).
 */
export function restrictTree(dir: string, depth = 2): void {
  privateDir(dir);
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) {
      if (depth > 0) restrictTree(p, depth - 1);
      else if ((st.mode & 0o777) !== PRIVATE_DIR_MODE) chmodSync(p, PRIVATE_DIR_MODE);
    } else if ((st.isFile() || st.isSocket()) && (st.mode & 0o777) !== PRIVATE_FILE_MODE) {
      chmodSync(p, PRIVATE_FILE_MODE);
    }
  }
}
