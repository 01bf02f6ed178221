// Network namespaces, veth pairs and bridges for tests, created through iproute2 and always
// removed: by `close()`, and at process exit for anything a failed test left behind.
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import { atExit } from './cleanup.js';

const run = promisify(execFile);

/** Names of everything a test scope makes start with this, so leftovers are recognisable. */
export const TEST_PREFIX = 'ct';

export async function ip(args: string[], netns?: string): Promise<string> {
  const full = netns ? ['-n', netns, ...args] : args;
  try {
    const { stdout } = await run('ip', full);
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${full.join(' ')}: ${(e.stderr ?? e.message).trim()}`);
  }
}

export async function inNetns(
  netns: string,
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string }> {
  return run('ip', ['netns', 'exec', netns, cmd, ...args], { timeout: opts.timeoutMs ?? 30_000 });
}

export interface Netns {
  readonly name: string;
  exec(
    cmd: string,
    args: string[],
    opts?: { timeoutMs?: number },
  ): Promise<{ stdout: string; stderr: string }>;
  ip(args: string[]): Promise<string>;
}

export interface VethEnd {
  name: string;
  netns?: string;
  address?: string; // CIDR form, e.g. 10.1.0.1/24
}

/**
 * A set of namespaces and links that live and die together. Undo steps run in reverse order of
 * creation; deleting a namespace also deletes the links inside it.
 */
export class NetScope {
  private readonly tag = randomBytes(2).toString('hex');
  private counter = 0;
  private readonly undos: { label: string; undo: () => Promise<void>; forget: () => void }[] = [];

  /** A fresh name of at most 15 characters, the kernel's limit for link names. */
  uniqueName(hint = ''): string {
    this.counter++;
    return `${TEST_PREFIX}${this.tag}${hint.slice(0, 4)}${this.counter}`.slice(0, 15);
  }

  private track(label: string, undoArgs: string[]): void {
    const forget = atExit(() => execFileSync('ip', undoArgs, { stdio: 'ignore' }));
    this.undos.push({
      label,
      forget,
      undo: async () => {
        await run('ip', undoArgs).catch(() => undefined);
      },
    });
  }

  async netns(hint = 'ns'): Promise<Netns> {
    const name = this.uniqueName(hint);
    await ip(['netns', 'add', name]);
    this.track(`netns ${name}`, ['netns', 'del', name]);
    await ip(['link', 'set', 'lo', 'up'], name);
    return {
      name,
      exec: (cmd, args, opts) => inNetns(name, cmd, args, opts),
      ip: (args) => ip(args, name),
    };
  }

  /** A veth pair; each end is moved into its namespace, addressed and brought up. */
  async veth(a: VethEnd, b: VethEnd): Promise<void> {
    await ip(['link', 'add', a.name, 'type', 'veth', 'peer', 'name', b.name]);
    // Deleting one end deletes the pair; if it moved into a namespace, that namespace's removal
    // takes it along, so the undo may find nothing, which is fine.
    this.track(
      `veth ${a.name}`,
      a.netns ? ['-n', a.netns, 'link', 'del', a.name] : ['link', 'del', a.name],
    );
    for (const end of [a, b]) {
      if (end.netns) await ip(['link', 'set', end.name, 'netns', end.netns]);
      if (end.address) await ip(['addr', 'add', end.address, 'dev', end.name], end.netns);
      await ip(['link', 'set', end.name, 'up'], end.netns);
    }
  }

  async bridge(name: string, netns?: string): Promise<void> {
    await ip(['link', 'add', name, 'type', 'bridge'], netns);
    this.track(
      `bridge ${name}`,
      netns ? ['-n', netns, 'link', 'del', name] : ['link', 'del', name],
    );
    await ip(['link', 'set', name, 'up'], netns);
  }

  async attachToBridge(link: string, bridge: string, netns?: string): Promise<void> {
    await ip(['link', 'set', link, 'master', bridge], netns);
  }

  async close(): Promise<void> {
    while (this.undos.length > 0) {
      const step = this.undos.pop()!;
      await step.undo();
      step.forget();
    }
  }
}

export async function listNetns(): Promise<string[]> {
  const out = await ip(['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n !== '');
}
