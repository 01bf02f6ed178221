// iproute2 as the agent's netlink client: in the node's namespace (the agent's own, or a named
// one in a lab) and inside a container's namespace given by path.
import { execFile } from 'node:child_process';
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
    return exec('nsenter', [`--net=${netnsPath}`, 'ip', ...args]);
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
