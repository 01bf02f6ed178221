// Runs inside a node's namespace for the pod set-up benchmark: for each address written to
// stdin (one JSON line `{"ip":..., "port":...}`) it retries a TCP connect until the pod answers,
// with a SYN-ACK or a RST (both prove the packet reached the pod's stack and came back), then
// writes the address back. Exits when stdin closes.
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const ATTEMPT_TIMEOUT_MS = 25;
const RETRY_MS = 2;

function attempt(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: ip, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), ATTEMPT_TIMEOUT_MS);
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}

async function probe(ip: string, port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await attempt(ip, port)) {
      process.stdout.write(JSON.stringify({ ip, ok: true }) + '\n');
      return;
    }
    await new Promise((r) => setTimeout(r, RETRY_MS));
  }
  process.stdout.write(JSON.stringify({ ip, ok: false }) + '\n');
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const { ip, port } = JSON.parse(line) as { ip: string; port: number };
  void probe(ip, port);
});
rl.on('close', () => process.exit(0));
