// The lab's hands on the machine: commands, network namespaces and daemon processes whose pid
// is recorded with the process's start time, so that a pid reused by something else is never
// signalled.
import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';

import { LabError } from './plan.js';

export async function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new LabError(
              'failed',
              `${cmd} ${args.join(' ')}: ${stderr.trim() || (err as Error).message}`,
              { cause: err },
            ),
          );
        } else resolve({ stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export const ip = (args: string[]): Promise<{ stdout: string; stderr: string }> => run('ip', args);
export const inNs = (
  ns: string,
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> =>
  run('ip', ['netns', 'exec', ns, cmd, ...args], opts);

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

export function listNetns(prefix: string): string[] {
  try {
    return readdirSync('/run/netns').filter((n) => n.startsWith(prefix));
  } catch {
    return [];
  }
}

/** Creates a namespace with lo up; an existing one is reused (a re-run of an interrupted up). */
export async function createNetns(name: string): Promise<void> {
  if (!netnsExists(name)) await ip(['netns', 'add', name]);
  await ip(['-n', name, 'link', 'set', 'lo', 'up']);
}

/**
 * What container runtimes set in a pod's namespace (Docker since 20.10, containerd 2.0): any
 * user may bind ports below 1024 and open ICMP echo sockets. Both settings belong to the
 * namespace, so an unprivileged pod process gets nothing on the host or in another pod.
 */
export async function allowUnprivilegedPortsAndPing(name: string): Promise<void> {
  await inNs(name, 'sysctl', [
    '-q',
    '-w',
    'net.ipv4.ip_unprivileged_port_start=0',
    'net.ipv4.ping_group_range=0 2147483647',
  ]);
}

/** Pids of processes whose network namespace is `name`. */
export async function netnsPids(name: string): Promise<number[]> {
  try {
    const { stdout } = await ip(['netns', 'pids', name]);
    return stdout
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
      .filter((n) => n > 0);
  } catch {
    return [];
  }
}

export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  for (const pid of await netnsPids(name)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await ip(['netns', 'delete', name]).catch((err: unknown) => {
    // a namespace file whose mount is gone (a crash between mount and add)
    if (netnsExists(name)) throw err;
  });
}

/** Field 22 of /proc/PID/stat: clock ticks since boot; with the pid it names one process. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export interface ProcessRecord {
  pid: number;
  startTime: string;
}

export function isAlive(rec: ProcessRecord | undefined): boolean {
  if (!rec) return false;
  const st = processStartTime(rec.pid);
  if (st === undefined || st !== rec.startTime) return false;
  try {
    const state = readFileSync(`/proc/${rec.pid}/stat`, 'utf8');
    return state.slice(state.lastIndexOf(')') + 2, state.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** Starts a detached process (its own session) writing to `logFile`; returns its record. */
export function spawnDaemon(
  argv: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; cwd?: string },
): ProcessRecord {
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    child.unref();
    child.on('error', () => undefined);
    if (child.pid === undefined) throw new LabError('failed', `cannot start ${argv[0]}`);
    const startTime = processStartTime(child.pid);
    if (startTime === undefined) {
      throw new LabError(
        'failed',
        `${argv.join(' ')} exited at once; see ${opts.logFile}:\n${tail(opts.logFile, 20)}`,
      );
    }
    return { pid: child.pid, startTime };
  } finally {
    closeSync(fd);
  }
}

export function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .slice(-lines - 1)
      .join('\n');
  } catch {
    return '';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** SIGTERM to the process's group, SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopProcess(rec: ProcessRecord | undefined, graceMs = 5000): Promise<void> {
  if (!rec || !isAlive(rec)) return;
  const signal = (sig: NodeJS.Signals): void => {
    for (const target of [-rec.pid, rec.pid]) {
      try {
        process.kill(target, sig);
      } catch {
        // no such group, or gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(rec) && Date.now() < deadline) await sleep(50);
  if (isAlive(rec)) {
    signal('SIGKILL');
    while (isAlive(rec)) await sleep(20);
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new LabError(
        'failed',
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`,
      );
    }
    await sleep(intervalMs);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    import('node:net')
      .then(({ connect }) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      })
      .catch(() => resolve(false));
  });
}
