// Child Node processes for tests that need a real crash (SIGKILL) rather than a polite stop.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

import { atExitKill } from './cleanup.js';
import { sleep } from './wait.js';

export interface NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout so far. */
  output(): string;
  /** Lines of stdout parsed as JSON (lines that are not JSON are skipped). */
  jsonLines<T = unknown>(): T[];
  kill(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnNode(
  script: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: readonly string[] } = {},
): NodeProcess {
  const nodeArgs = ['--enable-source-maps', ...(opts.nodeArgs ?? [])];
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-8000)));
  const forget = atExitKill(child.pid!);
  // A child a test forgot must not keep the test process alive: it is killed at exit instead.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      forget();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    pid: child.pid!,
    output: () => out + err,
    jsonLines<T>() {
      const lines: T[] = [];
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(line) as T);
        } catch {
          // partial line still being written
        }
      }
      return lines;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const res = await Promise.race([exited, sleep(10_000).then(() => undefined)]);
      if (res === undefined) {
        child.kill('SIGKILL');
        return (await exited).code;
      }
      return res.code;
    },
    exited,
  };
}

/**
 * Pids of the processes whose command line has `arg` as one of its arguments (a server found
 * by its configuration file, for a signal or its CPU time).
 */
export function pidsWithArgument(arg: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(arg)) {
        out.push(Number(entry));
      }
    } catch {
      // gone
    }
  }
  return out;
}

// USER_HZ: 100 on every Linux architecture Node runs on.
const CLOCK_TICKS = 100;

/** CPU seconds (user and system) a process has used so far, from /proc. */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // after the command name in parentheses: utime and stime are fields 14 and 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
