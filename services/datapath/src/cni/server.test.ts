// The plugin and the agent's server over a real unix socket (in a temp dir, no root), with a
// fake endpoint manager: what crosses the wire, error mapping, STATUS, and requests running
// concurrently (the endpoint manager orders them per attachment).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CniError } from './errors.js';
import { runPlugin } from './plugin.js';
import { buildAddResult } from './result.js';
import { unixTransport } from './socket.js';
import type { EndpointRequest } from '../endpoints/manager.js';
import { startCniServer, type CniServer } from './server.js';

const dir = mkdtempSync(join(tmpdir(), 'ciliate-cni-server-'));
const socketPath = join(dir, 'cni.sock');
const ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/p1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};
const CONF = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'ciliate',
  type: 'ciliate-cni',
  socketPath,
});

describe('CNI server over a unix socket', () => {
  let server: CniServer;
  const calls: string[] = [];
  let ready = true;
  let active = 0;
  let maxActive = 0;
  const logs: Record<string, unknown>[] = [];

  before(async () => {
    server = await startCniServer({
      socketPath,
      endpoints: {
        async add(req: EndpointRequest) {
          active++;
          maxActive = Math.max(maxActive, active);
          await new Promise((r) => setTimeout(r, 20));
          active--;
          calls.push(`ADD ${req.containerId}`);
          if (req.containerId === 'full') throw new CniError(101, 'no address left');
          if (req.containerId === 'boom') throw new Error('netlink exploded');
          return buildAddResult(req.config.cniVersion, {
            hostIfname: 'lxc00000000000',
            hostMac: '02:00:00:00:00:01',
            ifname: req.ifname,
            mac: '02:00:00:00:00:02',
            mtu: 1500,
            netns: req.netns!,
            address: '10.0.0.2/32',
            gateway: '10.0.0.1',
          });
        },
        del(req) {
          calls.push(`DEL ${req.containerId}`);
          return Promise.resolve();
        },
        check(req) {
          calls.push(`CHECK ${req.containerId}`);
          return Promise.resolve();
        },
        gc(valid) {
          calls.push(`GC ${valid.map((v) => v.containerID).join(',')}`);
          return Promise.resolve([]);
        },
      },
      ready: () =>
        Promise.resolve(
          ready
            ? { ok: true as const }
            : { ok: false as const, code: 50 as const, msg: 'no pod address left' },
        ),
      log: (e) => logs.push(e),
    });
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = (env: Record<string, string>, conf = CONF) =>
    runPlugin(env, conf, unixTransport(5000));

  it('the socket is for root only', () => {
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
  });

  it('ADD crosses the socket and comes back as the result in the request version', async () => {
    const out = await run(ENV);
    assert.equal(out.exitCode, 0, out.stdout);
    const r = JSON.parse(out.stdout) as { cniVersion: string; ips: { interface: number }[] };
    assert.equal(r.cniVersion, '1.0.0');
    assert.equal(r.ips[0]?.interface, 1);
    assert.ok(logs.some((l) => l.event === 'cni_request' && l.command === 'ADD' && l.ok === true));
  });

  it('agent errors keep their code; unexpected ones are 999 with the cause', async () => {
    const full = JSON.parse((await run({ ...ENV, CNI_CONTAINERID: 'full' })).stdout) as {
      code: number;
      msg: string;
    };
    assert.deepEqual(full, { cniVersion: '1.0.0', code: 101, msg: 'no address left' });
    const boom = JSON.parse((await run({ ...ENV, CNI_CONTAINERID: 'boom' })).stdout) as {
      code: number;
      msg: string;
    };
    assert.equal(boom.code, 999);
    assert.match(boom.msg, /netlink exploded/);
  });

  it('DEL, CHECK and GC reach the manager; STATUS follows readiness', async () => {
    calls.length = 0;
    assert.equal((await run({ ...ENV, CNI_COMMAND: 'DEL' })).exitCode, 0);
    assert.equal((await run({ ...ENV, CNI_COMMAND: 'CHECK' })).exitCode, 0);
    const gcConf = JSON.stringify({
      ...(JSON.parse(CONF) as object),
      cniVersion: '1.1.0',
      'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }],
    });
    assert.equal((await run({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }, gcConf)).exitCode, 0);
    assert.deepEqual(calls, ['DEL c1', 'CHECK c1', 'GC keep']);
    assert.equal((await run({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, gcConf)).exitCode, 0);
    ready = false;
    const st = await run({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, gcConf);
    assert.equal(st.exitCode, 1);
    assert.equal((JSON.parse(st.stdout) as { code: number }).code, 50);
    ready = true;
  });

  it('requests for different containers run concurrently', async () => {
    maxActive = 0;
    const outs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => run({ ...ENV, CNI_CONTAINERID: `p${i}` })),
    );
    assert.ok(outs.every((o) => o.exitCode === 0));
    assert.ok(maxActive > 1, `at most ${maxActive} ran at once`);
  });

  it('garbage on the socket is answered with a decode error, not a crash', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const s = createConnection(socketPath);
      let buf = '';
      s.on('data', (d) => (buf += d.toString()));
      s.on('end', () => resolve(buf));
      s.on('error', reject);
      s.write('{not json\n');
    });
    assert.equal((JSON.parse(reply) as { error: { code: number } }).error.code, 6);
    assert.equal((await run(ENV)).exitCode, 0, 'still serving');
  });

  const raw = (line: string) =>
    new Promise<string>((resolve, reject) => {
      const s = createConnection(socketPath);
      let buf = '';
      s.on('data', (d) => (buf += d.toString()));
      s.on('end', () => resolve(buf));
      s.on('error', reject);
      s.write(line + '\n');
    });

  it('a whole invocation (the native front) is run through the plugin core in the agent', async () => {
    const ok = await raw(
      JSON.stringify({ v: 1, invoke: { env: { ...ENV, CNI_CONTAINERID: 'inv1' }, stdin: CONF } }),
    );
    const nl = ok.indexOf('\n');
    assert.equal(ok.slice(0, nl), '0');
    const result = JSON.parse(ok.slice(nl + 1)) as { cniVersion: string; ips: unknown[] };
    assert.equal(result.cniVersion, '1.0.0');
    assert.equal(result.ips.length, 1);
    assert.ok(calls.includes('ADD inv1'));
    // the core's own checks, with its codes: a missing variable is 4
    const bad = await raw(
      JSON.stringify({ v: 1, invoke: { env: { CNI_COMMAND: 'ADD' }, stdin: CONF } }),
    );
    assert.equal(bad.slice(0, bad.indexOf('\n')), '1');
    assert.equal((JSON.parse(bad.slice(bad.indexOf('\n') + 1)) as { code: number }).code, 4);
  });
});
