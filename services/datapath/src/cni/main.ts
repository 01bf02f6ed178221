// Entry of the `ciliate-cni` executable: what a container runtime runs.
import { CniError, CniErrorCode } from './errors.js';
import { runPlugin } from './plugin.js';
import { unixTransport } from './socket.js';
import { CURRENT_VERSION } from './version.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function main(): Promise<{ stdout: string; exitCode: number }> {
  let stdin: string;
  try {
    stdin = await readStdin();
  } catch (err) {
    const e = new CniError(CniErrorCode.IO_FAILURE, `stdin: ${(err as Error).message}`);
    return { stdout: JSON.stringify(e.toJson(CURRENT_VERSION)) + '\n', exitCode: 1 };
  }
  return runPlugin(process.env, stdin, unixTransport());
}

const out = await main();
process.stdout.write(out.stdout, () => process.exit(out.exitCode));
