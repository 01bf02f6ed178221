// A cluster without Ciliate's CRDs: the bridge syncs the kinds the API serves, skips the others
// with a warning, completes its initial sync, and picks the cilium.io kinds up once the CRDs are
// installed, without a restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { waitFor } from '@ciliate/testkit';

import {
  installCrds,
  spawnBridge,
  startEnv,
  waitLeader,
  waitReady,
  type BridgeProcess,
  type TestEnv,
} from './testing.k8s-helpers.js';

describe('kube-bridge: kinds whose CRDs are missing', () => {
  let env: TestEnv;
  let bridge: BridgeProcess;

  before(async () => {
    env = await startEnv({ crds: false });
    bridge = await spawnBridge({
      kubeconfig: env.kube.kubeconfig,
      nats: env.nats,
      kindRetryPeriod: '500ms',
    });
  });
  after(async () => {
    await bridge?.kill();
    await env?.close();
  });

  it('skips them with a warning and still completes the initial sync', async () => {
    await waitLeader(bridge);
    await waitReady(bridge);
    assert.equal(await env.store.sourceSynced('kubernetes'), true);
    const skipped = bridge
      .logs<{ event?: string; kind?: string }>()
      .filter((l) => l.event === 'kind.unavailable')
      .map((l) => l.kind)
      .sort();
    assert.equal(skipped.length, 10);
    assert.ok(skipped.every((k) => k?.startsWith('Cilium')));
    assert.equal(await bridge.metric('ciliate_kube_bridge_kind_available'), 6);
    assert.ok(await env.store.get({ kind: 'Namespace', namespace: '', name: 'default' }));
  });

  it('picks them up once the CRDs are installed', async () => {
    await installCrds(env.kube);
    await waitFor(
      'every kind available',
      async () =>
        (await bridge.metric('ciliate_kube_bridge_kind_available')) === 16 ? true : undefined,
      { timeoutMs: 20_000 },
    );
    await env.kube.kubectl(['apply', '-f', '-'], {
      input: `
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: default-deny}
spec: {endpointSelector: {}, ingress: [{}]}
`,
    });
    await waitFor(
      'the policy in the store',
      () =>
        env.store.get({
          kind: 'CiliumClusterwideNetworkPolicy',
          namespace: '',
          name: 'default-deny',
        }),
      { timeoutMs: 10_000 },
    );
    assert.equal(bridge.proc.child.exitCode, null, 'never crashed');
  });
});
