import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  IdentityAllocateReplySchema,
  IdentityInfoSchema,
  identitySubject,
  identityNodeSubject,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';
import { spawnNode, startNats, waitFor, type NatsServer, type NodeProcess } from '@ciliate/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));
const IDENTITY = fileURLToPath(import.meta.resolve('@ciliate/identity/main'));

async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(CLI, args, { env: { CILIATE_CONTEXT_FILE: '/nonexistent/context.json' } });
  const { code } = await p.exited;
  return { code, out: p.output() };
}

describe('ciliate identity', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let svc: NodeProcess;
  let web: number;

  before(async () => {
    nats = await startNats();
    svc = spawnNode(IDENTITY, [], {
      env: {
        CILIATE_NATS_URL: nats.url,
        CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
        CILIATE_NODE: 'id-0',
      },
    });
    await waitFor(
      'ciliate-identity',
      () => (svc.output().includes('identity.synced') ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    nc = await connect({ servers: nats.url });
    const rpc = createRpcClient(nc, disabledTracing);
    const alloc = (node: string, labels: string[]) =>
      rpc.request(
        identityNodeSubject('allocate', node),
        { node, labels },
        IdentityAllocateReplySchema,
      );
    web = (await alloc('node-a', ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop'])).id;
    await alloc('node-b', ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop']);
    await alloc('node-a', ['k8s:app=db', 'k8s:io.kubernetes.pod.namespace=shop']);
    // The service answers list and get from its mirror: wait until it shows both references.
    await waitFor('the mirror', async () => {
      const i = await rpc.request(identitySubject('lookup'), { id: web }, IdentityInfoSchema);
      return i.references === 2 ? true : undefined;
    });
  });
  after(async () => {
    await nc?.close();
    await svc?.kill('SIGKILL');
    await nats?.close();
  });

  it('lists identities as JSON, reserved ones first, with reference counts', async () => {
    const { code, out } = await cli(['identity', 'list', '-o', 'json', '--nats', nats.url]);
    assert.equal(code, 0, out);
    const parsed = JSON.parse(out) as { kind: string; items: unknown };
    assert.equal(parsed.kind, 'IdentityList');
    const report = { items: IdentityInfoSchema.array().parse(parsed.items) };
    assert.equal(report.items[0]!.id, 1);
    assert.deepEqual(report.items[0]!.labels, ['reserved:host']);
    const w = report.items.find((i) => i.id === web)!;
    assert.deepEqual(w.labels, ['k8s:app=web', 'k8s:io.kubernetes.pod.namespace=shop']);
    assert.equal(w.references, 2);
    assert.deepEqual(w.nodes, ['node-a', 'node-b']);
    assert.equal(report.items.filter((i) => !i.reserved).length, 2);
  });

  it('prints a table by default', async () => {
    const { code, out } = await cli(['identity', 'list', '--nats', nats.url]);
    assert.equal(code, 0, out);
    assert.match(out, /^ID\s+REFS\s+NODES\s+LABELS$/m);
    assert.match(
      out,
      new RegExp(
        `^${web}\\s+2\\s+node-a,node-b\\s+k8s:app=web k8s:io.kubernetes.pod.namespace=shop$`,
        'm',
      ),
    );
    assert.match(out, /^1\s+-\s+-\s+reserved:host$/m);
  });

  it('gets one identity with labels, references and nodes', async () => {
    const { code, out } = await cli(['identity', 'get', String(web), '--nats', nats.url]);
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`^ID:\\s+${web}$`, 'm'));
    assert.match(out, /^ {2}k8s:app=web$/m);
    assert.match(out, /^References:\s+2$/m);
    assert.match(out, /^Nodes:\s+node-a, node-b$/m);
    const json = await cli(['identity', 'get', String(web), '-o', 'json', '--nats', nats.url]);
    assert.equal(IdentityInfoSchema.parse(JSON.parse(json.out)).references, 2);
  });

  it('says so when an identity does not exist, and refuses a non-numeric one', async () => {
    const missing = await cli(['identity', 'get', '65000', '--nats', nats.url]);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /identity 65000 not found/);
    const bad = await cli(['identity', 'get', 'web', '--nats', nats.url]);
    assert.equal(bad.code, 2);
    assert.match(bad.out, /numeric identity/);
  });
});
