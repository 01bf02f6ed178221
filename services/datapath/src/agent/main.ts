// Standalone node agent (CNI side): `node dist/agent/main.js <config.json>`. Prints one JSON
// line {"event":"ready",...} when it serves, stops on SIGTERM/SIGINT leaving the datapath
// forwarding.
import { readFileSync } from 'node:fs';

import { createAgent, resolveAgentConfig } from './agent.js';

const file = process.argv[2];
const raw = file ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
const config = resolveAgentConfig(raw);
const agent = await createAgent(config, {
  log: (entry) =>
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n'),
});
process.stdout.write(
  JSON.stringify({
    event: 'ready',
    socketPath: config.socketPath,
    restored: agent.restored,
    pid: process.pid,
  }) + '\n',
);
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    void agent.close().finally(() => process.exit(0));
  });
}
