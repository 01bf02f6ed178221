import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { StatusReportSchema, type Principal } from '@ciliate/contracts';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { spawnNode, waitFor, type NodeProcess } from '@ciliate/testkit';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const PROBE = join(
  dirname(fileURLToPath(import.meta.resolve('@ciliate/runtime'))),
  'fixtures',
  'probe-service.js',
);
const VIEWER: Principal = { role: 'viewer' };

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(CLI, args, {
    env: { CILIATE_CONTEXT_FILE: '/nonexistent/context.json', ...env },
  });
  const { code } = await p.exited;
  return { code, out: p.output() };
}

describe('ciliate status', () => {
  let nats: SecureNats;
  const probes: NodeProcess[] = [];
  // The probe service runs as the admin (its components have no role of their own).
  const probe = (env: Record<string, string>): NodeProcess => {
    const p = spawnNode(PROBE, [], {
      env: {
        ...nats.env({ role: 'admin' }),
        CILIATE_HTTP_ADDRESS: '',
        CILIATE_NODE: 'node-a',
        ...env,
      },
    });
    probes.push(p);
    return p;
  };
  // Status only reads: the CLI runs as a viewer, its files in the environment.
  const asViewer = (): Record<string, string> => {
    const { CILIATE_NATS_URL: _url, ...files } = nats.env(VIEWER);
    return files;
  };
  before(async () => {
    nats = await startSecureNats();
  });
  after(async () => {
    for (const p of probes) await p.kill('SIGKILL');
    await nats?.close();
  });

  it('lists a running service instance with its version, node and health as stable JSON', async () => {
    const p = probe({ PROBE_COMPONENT: 'alpha' });
    await waitFor(
      'alpha to start',
      () => (p.output().includes('"event":"started"') ? true : undefined),
      { timeoutMs: 10_000 },
    );
    const { code, out } = await cli(['status', '-o', 'json', '--nats', nats.url], asViewer());
    assert.equal(code, 0, out);
    const report = StatusReportSchema.parse(JSON.parse(out));
    const alpha = report.instances.filter((i) => i.component === 'alpha');
    assert.equal(alpha.length, 1);
    assert.equal(alpha[0]!.version, '0.0.1-test');
    assert.equal(alpha[0]!.node, 'node-a');
    assert.equal(alpha[0]!.health, 'ready');
    assert.ok(alpha[0]!.uptimeSeconds !== null && alpha[0]!.uptimeSeconds >= 0);
    assert.equal(report.nats.url, nats.url);
  });

  it('prints a table by default and takes the server from CILIATE_NATS_URL', async () => {
    const { code, out } = await cli(['status'], nats.env(VIEWER));
    assert.equal(code, 0, out);
    assert.match(out, /^COMPONENT\s+NODE\s+INSTANCE\s+VERSION\s+UPTIME\s+HEALTH/m);
    assert.match(out, /^alpha\s+node-a\s+\S+\s+0\.0\.1-test\s+\d+s\s+ready/m);
  });

  it('--wait blocks until a slow instance is ready', async () => {
    probe({ PROBE_COMPONENT: 'slow', PROBE_SYNC_DELAY: '3s' });
    const t0 = Date.now();
    const { code, out } = await cli(
      [
        'status',
        '--wait',
        '--expect',
        'slow',
        '--timeout',
        '30s',
        '-o',
        'json',
        '--nats',
        nats.url,
      ],
      asViewer(),
    );
    assert.equal(code, 0, out);
    assert.ok(Date.now() - t0 >= 1500, 'it waited');
    const report = StatusReportSchema.parse(JSON.parse(out));
    assert.ok(report.instances.every((i) => i.health === 'ready'));
  });

  it('--wait fails on timeout with a message naming what is not ready', async () => {
    probe({ PROBE_COMPONENT: 'stuck', PROBE_SYNC_DELAY: '1h' });
    const { code, out } = await cli(
      ['status', '--wait', '--expect', 'stuck,never', '--timeout', '3s', '--nats', nats.url],
      asViewer(),
    );
    assert.equal(code, 1);
    assert.match(
      out,
      /timed out after 3s waiting for: never \(no instance found\), stuck@node-a \(initial-sync: not done yet\)/,
    );
  });

  it('fails clearly when NATS cannot be reached, and on a wrong flag', async () => {
    const down = await cli(['status', '--nats', 'nats://127.0.0.1:1']);
    assert.equal(down.code, 1);
    assert.match(down.out, /cannot reach NATS at nats:\/\/127\.0\.0\.1:1 \(from --nats\)/);
    // the secured server refuses a CLI without credentials
    const stranger = await cli(['status', '--nats', nats.url]);
    assert.equal(stranger.code, 1, stranger.out);
    assert.match(stranger.out, /cannot reach NATS at tls:\/\/127\.0\.0\.1:\d+ \(from --nats\)/);
    const bad = await cli(['status', '-o', 'xml']);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /--output: "xml" is not one of table, json, yaml/);
    const unknown = await cli(['nonsense']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.out, /unknown command "nonsense"/);
  });
});
