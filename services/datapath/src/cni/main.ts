// Entry of the `ciliate-cni` executable: what a container runtime runs.
import { runPlugin } from './plugin.js';
import { unixTransport } from './socket.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const out = await runPlugin(process.env, await readStdin(), unixTransport());
process.stdout.write(out.stdout, () => process.exit(out.exitCode));
