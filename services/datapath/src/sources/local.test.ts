// The standalone address source over the IPAM core: leases survive a restart through the pool
// file, an address is never held twice, and releasing is idempotent.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import fc from 'fast-check';

import { resolveAgentConfig } from '../agent/agent.js';
import { endpointLabels, hostIfname, ownerOf } from '../endpoints/manager.js';
import { InitIdentitySource, PoolAddressSource } from './local.js';

const dir = mkdtempSync(join(tmpdir(), 'ciliate-sources-'));
const owner = (id: string) => ({
  namespace: 'default',
  pod: `p-${id}`,
  containerId: id,
  ifname: 'eth0',
});

describe('PoolAddressSource', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the router address is the gateway; allocation is idempotent per owner', async () => {
    const src = PoolAddressSource.open('10.9.0.0/24');
    const a = await src.allocate(owner('a'));
    assert.equal(a.gateway, '10.9.0.1');
    assert.equal(a.ip, '10.9.0.2');
    assert.deepEqual(await src.allocate(owner('a')), a);
    assert.equal((await src.allocate(owner('b'))).ip, '10.9.0.3');
    assert.equal(await src.release(owner('a')), '10.9.0.2');
    assert.equal(await src.release(owner('a')), null, 'a second release is not an error');
    assert.deepEqual(await src.owners(), [owner('b')]);
    assert.equal(await src.available(), 254 - 2);
  });

  it('leases survive a restart through the pool file; another CIDR is refused', async () => {
    const file = join(dir, 'pool.json');
    const first = PoolAddressSource.open('10.9.1.0/24', file);
    const a = await first.allocate(owner('a'));
    const again = PoolAddressSource.open('10.9.1.0/24', file);
    assert.deepEqual(again.leases(), first.leases());
    assert.deepEqual(await again.allocate(owner('a')), a);
    assert.throws(() => PoolAddressSource.open('10.9.2.0/24', file), /podCidr: Invalid value/);
  });

  it('a full pool says so (RANGE_FULL) and reports nothing available', async () => {
    const src = PoolAddressSource.open('10.9.3.0/30');
    await src.allocate(owner('a'));
    await assert.rejects(
      src.allocate(owner('b')),
      (e: { code?: string }) => e.code === 'RANGE_FULL',
    );
    assert.equal(await src.available(), 0);
  });

  it('property: any sequence of allocations and releases never holds an address twice', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 })), { maxLength: 80 }),
        async (ops) => {
          const src = PoolAddressSource.open('10.9.4.0/27');
          const held = new Map<number, string>();
          for (const [alloc, n] of ops) {
            if (alloc) {
              try {
                held.set(n, (await src.allocate(owner(`c${n}`))).ip);
              } catch (e) {
                assert.equal((e as { code?: string }).code, 'RANGE_FULL');
              }
            } else {
              await src.release(owner(`c${n}`));
              held.delete(n);
            }
            const ips = src.leases().map((l) => l.ip);
            assert.equal(new Set(ips).size, ips.length);
            assert.equal(ips.length, held.size + 1, 'router + held');
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('endpoint naming and config', () => {
  it('host veth names fit the kernel limit, are stable and differ per attachment', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 64 }),
        fc.string({ minLength: 1, maxLength: 15 }),
        (c, i) => {
          const n = hostIfname(c, i);
          assert.ok(n.length <= 15 && /^lxc[0-9a-f]{11}$/.test(n));
          assert.equal(hostIfname(c, i), n);
        },
      ),
    );
    assert.notEqual(hostIfname('c1', 'eth0'), hostIfname('c1', 'net1'));
  });

  it('owners and labels come from the Kubernetes CNI_ARGS, with a fallback for plain runtimes', async () => {
    const k8s = { ignoreUnknown: true, raw: {}, podNamespace: 'shop', podName: 'web-0' };
    assert.deepEqual(ownerOf('c1', 'eth0', k8s), {
      namespace: 'shop',
      pod: 'web-0',
      containerId: 'c1',
      ifname: 'eth0',
    });
    assert.deepEqual(ownerOf('c1', 'eth0', { ignoreUnknown: false, raw: {} }), {
      namespace: 'cni',
      pod: 'c1',
      containerId: 'c1',
      ifname: 'eth0',
    });
    assert.deepEqual(endpointLabels(k8s), { 'k8s:io.kubernetes.pod.namespace': 'shop' });
    assert.deepEqual(
      await new InitIdentitySource().resolve(
        {},
        { namespace: 'default', pod: 'p', containerId: 'c', ifname: 'eth0' },
      ),
      { id: 5, labels: ['reserved:init'] },
    );
  });

  it('agent config: defaults filled, every bad setting named', () => {
    const cfg = resolveAgentConfig({ podCidr: '10.0.0.0/24' });
    assert.equal(cfg.socketPath, '/var/run/ciliate/cni.sock');
    assert.equal(cfg.attachMode, 'tc');
    assert.equal(resolveAgentConfig({ hostRouting: 'legacy' }).hostRouting, 'legacy');
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ mtu: 10 }, /^datapath.mtu: Invalid value: 10/],
      [{ attachMode: 'xdp' }, /^datapath.attachMode/],
      [{ socketPath: 'rel' }, /^datapath.socketPath/],
      [{ podCidr: 'nope' }, /^datapath.podCidr/],
      [{ nodeIPv4: '::1' }, /^datapath.nodeIPv4/],
      [{ traceMode: 'loud' }, /^datapath.traceMode/],
      [{ hostRouting: 'kernel' }, /^datapath.hostRouting: Invalid value: "kernel"/],
      [{ frobnicate: 1 }, /^datapath.frobnicate: Invalid value: 1: unknown setting/],
    ];
    for (const [input, message] of bad) assert.throws(() => resolveAgentConfig(input), { message });
  });
});
