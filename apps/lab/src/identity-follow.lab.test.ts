// A pod relabeled with `ciliate apply` keeps running and takes the identity of its new labels:
// the node's endpoint list (what `ciliate endpoint list` reads) shows it within a second of the
// change reaching the store, with the same endpoint and address, and the CLI prints it.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

import { EndpointListReplySchema, datapathSubjects, type EndpointInfo } from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';
import { ResourceStore } from '@ciliate/store';
import { connect } from '@nats-io/transport-node';

import { labConnectOptions, labDown, labLeftovers, labUp } from './lab.js';
import { waitFor } from './sys.js';

const root = mkdtempSync(join(tmpdir(), 'ciliate-lab-follow-'));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  CILIATE_STATE: join(root, 'state'),
  CILIATE_CONTEXT_FILE: join(root, 'context.json'),
};
const name = `lf${randomBytes(2).toString('hex')}`;
const cliMain = fileURLToPath(new URL('../../cli/bin/ciliate.js', import.meta.url));

function cli(args: string[]): string {
  const r = spawnSync(process.execPath, [cliMain, ...args], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, `ciliate ${args.join(' ')}: ${r.stdout} ${r.stderr}`);
  return r.stdout;
}

/** The CLI without blocking this process (its store watch times the change meanwhile). */
function cliAsync(args: string[]): Promise<void> {
  const child = spawn(process.execPath, [cliMain, ...args], { env, stdio: 'ignore' });
  return new Promise((resolve, reject) =>
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`ciliate ${args.join(' ')}: exit ${code}`)),
    ),
  );
}

function manifest(labels: string): string {
  const file = join(root, `pod-${labels.replace(/\W/g, '')}.yaml`);
  writeFileSync(
    file,
    `apiVersion: v1
kind: Namespace
metadata: {name: app}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: app, labels: {${labels}}}
spec:
  nodeName: node-1
  containers: [{name: c, ports: [{containerPort: 8080}]}]
`,
  );
  return file;
}

after(async () => {
  await labDown({ name, env }).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

describe('lab: identity follows labels', { timeout: 300_000 }, () => {
  it('`ciliate apply` with new labels: the endpoint list shows the new identity within 1 s', async () => {
    const m = await labUp({ name, nodes: 2, env, timeoutMs: 90_000 });
    const nc = await connect(labConnectOptions(m, 'lab-test'));
    try {
      const rpc = createRpcClient(nc, disabledTracing);
      const web = async (): Promise<EndpointInfo | undefined> =>
        (
          await rpc.request(
            datapathSubjects.endpoint('node-1', 'endpoint-list'),
            {},
            EndpointListReplySchema,
          )
        ).endpoints.find((e) => e.pod === 'app/web' || e.pod === 'web');
      cli(['apply', '-f', manifest('app: web')]);
      const before = await waitFor('the web endpoint', web, 60_000, 100);

      // the moment the new labels are in the store, from the store's own watch
      const store = await ResourceStore.open(nc);
      let changedAt = 0;
      const watch = await store.watch({ kind: 'Pod', namespace: 'app' }, {}, (ev) => {
        const labels = (ev.value as { metadata?: { labels?: Record<string, string> } })?.metadata
          ?.labels;
        if (labels?.tier === 'gold' && !changedAt) changedAt = Date.now();
      });
      try {
        await cliAsync(['apply', '-f', manifest('app: web, tier: gold')]);
        const afterChange = await waitFor(
          'the new identity in the endpoint list',
          async () => {
            const e = await web();
            return e && e.identity !== before.identity ? e : undefined;
          },
          5000,
          5,
        );
        const ms = Date.now() - changedAt;
        console.log(`label change in the store → new identity in the endpoint list: ${ms} ms`);
        assert.ok(changedAt > 0 && ms < 1000, `${ms} ms`);
        assert.equal(afterChange.id, before.id, 'the same endpoint');
        assert.equal(afterChange.ipv4, before.ipv4, 'the same address');
        assert.ok(afterChange.labels.includes('k8s:tier=gold'), afterChange.labels.join(','));
      } finally {
        await watch.stop();
      }
      // and what a person sees
      const shown = JSON.parse(cli(['endpoint', 'list', '-o', 'json'])) as unknown;
      assert.match(JSON.stringify(shown), /k8s:tier=gold/);
    } finally {
      await nc.close();
    }
    await labDown({ name, env });
    assert.deepEqual(labLeftovers(name, env), []);
  });
});
