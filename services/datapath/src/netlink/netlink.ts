// iproute2 as the agent's netlink client: in the node's namespace (the agent's own, or a named
// one in a lab) and inside a container's namespace given by path.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: string,
    readonly stderr: string,
  ) {
    super(`${command}: ${stderr.trim()}`);
  }
}

async function exec(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 30_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CommandError(`${cmd} ${args.join(' ')}`, e.stderr || e.message);
  }
}

/** Runs `cmd` with `input` on stdin (ip -batch). */
function execInput(cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(`${cmd} ${args.join(' ')}`, e.message));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new CommandError(
            `${cmd} ${args.join(' ')} <<< ${input.trim().replace(/\n/g, '; ')}`,
            err || `exit ${code}`,
          ),
        );
    });
    child.stdin.end(input);
  });
}

/**
 * The command line of an `ip` running in the namespace at `netnsPath`. A namespace named under
 * /var/run/netns (where runtimes and `ip netns add` put them) is entered by `ip -n` itself:
 * one process instead of nsenter + ip, a process start less on every pod set-up. Other paths
 * (/proc/PID/ns/net, ...) go through nsenter.
 */
export function ipInNetns(netnsPath: string): string[] {
  const named = /^\/var\/run\/netns\/([^/]+)$/.exec(netnsPath)?.[1];
  if (named && named !== '.' && named !== '..') return ['ip', '-n', named];
  return ['nsenter', `--net=${netnsPath}`, 'ip'];
}

/** What `ip` or nsenter says when the namespace to enter does not exist. */
export const NO_NETNS = /^(nsenter:|Cannot open network namespace)/m;

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  address: string;
  mtu: number;
  operstate: string;
}

export class Netlink {
  /** `nodeNetns`: a named namespace playing the node (labs); undefined = the agent's own. */
  constructor(readonly nodeNetns?: string) {}

  /** ip in the node namespace. */
  ip(args: string[]): Promise<string> {
    return exec('ip', this.nodeNetns ? ['-n', this.nodeNetns, ...args] : args);
  }

  /** ip inside a container namespace given by its path (ip -n wants a name, nsenter a path). */
  ipIn(netnsPath: string, args: string[]): Promise<string> {
    const [cmd, ...pre] = ipInNetns(netnsPath);
    return exec(cmd!, [...pre, ...args]);
  }

  /** Several ip commands in one process (`ip -batch -`), in the node namespace or, with
   * `netnsPath`, inside a container's; stops at the first failing line, unless `force` (every
   * line is tried, and the call fails after them when one did). */
  batch(
    lines: string[][],
    netnsPath?: string,
    opts: { json?: boolean; force?: boolean } = {},
  ): Promise<string> {
    const input = lines.map((l) => l.join(' ')).join('\n') + '\n';
    const flags = [...(opts.json ? ['-j'] : []), ...(opts.force ? ['-force'] : []), '-batch', '-'];
    if (netnsPath) {
      const [cmd, ...pre] = ipInNetns(netnsPath);
      return execInput(cmd!, [...pre, ...flags], input);
    }
    return execInput('ip', [...(this.nodeNetns ? ['-n', this.nodeNetns] : []), ...flags], input);
  }

  /** The node namespace as a path another namespace's `ip` can name (`... netns <path>`). */
  get nodeNetnsPath(): string {
    return this.nodeNetns ? `/var/run/netns/${this.nodeNetns}` : `/proc/${process.pid}/ns/net`;
  }

  sysctlIn(netnsPath: string, key: string, value: string): Promise<string> {
    return exec('nsenter', [`--net=${netnsPath}`, 'sysctl', '-q', '-w', `${key}=${value}`]);
  }

  /** The link, or undefined when it does not exist. */
  async link(name: string, netnsPath?: string): Promise<LinkInfo | undefined> {
    const args = ['-j', 'link', 'show', 'dev', name];
    try {
      const out = netnsPath ? await this.ipIn(netnsPath, args) : await this.ip(args);
      return (JSON.parse(out) as LinkInfo[])[0];
    } catch (err) {
      if (err instanceof CommandError && /does not exist|Cannot find device/.test(err.stderr)) {
        return undefined;
      }
      throw err;
    }
  }
}
