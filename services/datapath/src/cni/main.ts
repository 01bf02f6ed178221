// The full plugin in one process: parses and checks the invocation, asks the agent over the
// unix socket (one AgentRequest), prints the result and exits with its code. The native
// executable (src/cni/shim.c) runs this entry whenever it cannot hand the whole invocation to
// the agent (VERSION, a config it cannot read with certainty, the agent not answering), with
// the same environment and stdin, so every such answer comes from the one TypeScript core.
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

const { stdout, exitCode } = await main();
process.stdout.write(stdout, () => process.exit(exitCode));
