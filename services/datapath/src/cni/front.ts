// Entry of the `ciliate-cni` executable: what a container runtime runs.
//
// Every CNI call starts a process, so this entry loads nothing but node:net: it hands the whole
// invocation (the CNI_* environment and stdin) to the node agent over its unix socket, and the
// agent runs the plugin core (runPlugin) on it and answers `<exit code>\n<stdout>`. Every check
// and every error still comes from that one core. When the fast path cannot be taken (VERSION,
// a config that is not JSON, the agent not answering) the full plugin is loaded in this process
// and answers as the spec says, including "agent unreachable" (11) and STATUS 50.
import { createConnection } from 'node:net';

const DEFAULT_SOCKET = '/var/run/ciliate/cni.sock';
const REPLY_TIMEOUT_MS = 120_000;

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The config's top-level socketPath; undefined when the config cannot be read here. */
function socketPathOf(stdin: string): string | undefined {
  try {
    const conf = JSON.parse(stdin) as { socketPath?: unknown } | null;
    if (conf === null || typeof conf !== 'object') return undefined;
    if (conf.socketPath === undefined) return DEFAULT_SOCKET;
    return typeof conf.socketPath === 'string' ? conf.socketPath : undefined;
  } catch {
    return undefined;
  }
}

/** The agent's answer, or undefined when it could not be reached. */
function viaAgent(
  socketPath: string,
  stdin: string,
): Promise<{ stdout: string; exitCode: number } | undefined> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('CNI_') && v !== undefined) env[k] = v;
  }
  return new Promise((resolve) => {
    const sock = createConnection(socketPath);
    let buf = '';
    let connected = false;
    const timer = setTimeout(() => sock.destroy(), REPLY_TIMEOUT_MS);
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
      sock.write(JSON.stringify({ v: 1, invoke: { env, stdin } }) + '\n');
    });
    sock.on('data', (d: string) => (buf += d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      const nl = buf.indexOf('\n');
      const exitCode = Number(buf.slice(0, nl));
      // Not connected, or the agent went away mid-answer: the full plugin reports it properly.
      if (!connected || nl < 0 || !Number.isInteger(exitCode)) resolve(undefined);
      else resolve({ exitCode, stdout: buf.slice(nl + 1) });
    });
  });
}

async function main(): Promise<{ stdout: string; exitCode: number }> {
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (err) {
    const { CniError, CniErrorCode } = await import('./errors.js');
    const e = new CniError(CniErrorCode.IO_FAILURE, `stdin: ${(err as Error).message}`);
    return { stdout: JSON.stringify(e.toJson('1.1.0')) + '\n', exitCode: 1 };
  }
  const socketPath = process.env.CNI_COMMAND === 'VERSION' ? undefined : socketPathOf(stdin);
  const fast = socketPath === undefined ? undefined : await viaAgent(socketPath, stdin);
  if (fast !== undefined) return fast;
  const { runPluginMain } = await import('./main.js');
  return runPluginMain(stdin);
}

const { stdout, exitCode } = await main();
process.stdout.write(stdout, () => process.exit(exitCode));
