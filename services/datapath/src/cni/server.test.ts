// The plugin and the agent's server over a real unix socket (in a temp dir, no root), with a
// fake endpoint manager: what crosses the wire, error mapping, STATUS, requests running
// concurrently (the endpoint manager orders them per attachment), and hostile bytes written
// straight to the socket, each answered with a CNI error, counted, and never reaching the
// endpoints. (The real CNI_NETNS check runs in netns.test.ts and boundary.priv.test.ts.)
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CniError } from './errors.js';
import type { CniRefusalReason } from './server.js';
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
  const refusals: CniRefusalReason[] = [];
  const netnsChecked: string[] = [];

  before(async () => {
    server = await startCniServer({
      socketPath,
      readTimeoutMs: 300,
      onRefused: (reason) => refusals.push(reason),
      // a stand-in for checkNetns (no namespaces here): /var/run/netns only
      checkNetns: (netns, command) => {
        netnsChecked.push(`${command} ${netns}`);
        if (netns.startsWith('/var/run/netns/')) return Promise.resolve();
        return Promise.reject(new CniError(4, `CNI_NETNS: Invalid value: "${netns}": elsewhere`));
      },
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

  /** Writes `bytes` on a fresh connection and reads until the agent closes it. */
  const rawBytes = (bytes: Buffer | string, end = false) =>
    new Promise<string>((resolve, reject) => {
      const s = createConnection(socketPath);
      let buf = '';
      s.on('data', (d) => (buf += d.toString()));
      s.on('close', () => resolve(buf));
      s.on('error', (err: NodeJS.ErrnoException) =>
        // the agent stops reading a request it refused: the rest of ours may meet a closed door
        err.code === 'EPIPE' || err.code === 'ECONNRESET' ? undefined : reject(err),
      );
      s.write(bytes);
      if (end) s.end();
    });
  const errorOf = (reply: string) =>
    (JSON.parse(reply) as { ok: boolean; error: { code: number; msg: string } }).error;

  describe('hostile requests written to the socket', () => {
    const before = { calls: 0 };
    const request = (over: Record<string, unknown>) =>
      JSON.stringify({
        v: 1,
        command: 'ADD',
        containerId: 'raw1',
        netns: '/var/run/netns/p1',
        ifname: 'eth0',
        args: { raw: {} },
        config: { cniVersion: '1.1.0', name: 'ciliate', type: 'ciliate-cni' },
        ...over,
      }) + '\n';

    it('a netns outside the allowed places: code 4 naming CNI_NETNS, never reaching ADD', async () => {
      calls.length = 0;
      refusals.length = 0;
      before.calls = calls.length;
      const e = errorOf(await rawBytes(request({ netns: '/proc/1/ns/net' })));
      assert.equal(e.code, 4);
      assert.match(e.msg, /^CNI_NETNS: /);
      assert.deepEqual(calls, []);
      assert.deepEqual(refusals, ['netns']);
      assert.ok(netnsChecked.includes('ADD /proc/1/ns/net'));
    });

    it('the same through the native front (a whole invocation): same check, same code', async () => {
      const out = await raw(
        JSON.stringify({
          v: 1,
          invoke: {
            env: { ...ENV, CNI_CONTAINERID: 'inv2', CNI_NETNS: '/etc/hosts' },
            stdin: CONF,
          },
        }),
      );
      assert.equal(out.slice(0, out.indexOf('\n')), '1');
      const e = JSON.parse(out.slice(out.indexOf('\n') + 1)) as { code: number; msg: string };
      assert.equal(e.code, 4);
      assert.match(e.msg, /^CNI_NETNS: /);
      assert.ok(!calls.includes('ADD inv2'));
    });

    it('missing fields are named; a path for a container ID is refused', async () => {
      const missing = errorOf(await rawBytes('{"v":1,"command":"ADD"}\n'));
      assert.equal(missing.code, 4);
      assert.match(missing.msg, /^CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS: Required value/);
      const traversal = errorOf(await rawBytes(request({ containerId: '../../../etc/cron.d/x' })));
      assert.equal(traversal.code, 4);
      assert.match(traversal.msg, /^CNI_CONTAINERID/);
      const noConfig = errorOf(await rawBytes(request({ config: undefined })));
      assert.equal(noConfig.code, 6);
      assert.deepEqual(calls, []);
    });

    it('a GC without the list of valid attachments removes nothing', async () => {
      const e = errorOf(
        await rawBytes(
          request({ command: 'GC', containerId: undefined, netns: undefined, ifname: undefined }),
        ),
      );
      assert.equal(e.code, 7);
      assert.match(e.msg, /^cni\.dev\/valid-attachments: Required value for GC/);
      assert.ok(!calls.some((c) => c.startsWith('GC')));
    });

    it('a line over 1 MiB is refused without reading the rest', async () => {
      refusals.length = 0;
      const e = errorOf(await rawBytes(Buffer.alloc(2 << 20, 0x7b)));
      assert.equal(e.code, 6);
      assert.match(e.msg, /longer than 1048576 bytes/);
      assert.deepEqual(refusals, ['too_large']);
    });

    it('malformed JSON, a JSON value that is no request, a line that never ends', async () => {
      refusals.length = 0;
      assert.equal(errorOf(await rawBytes('{"v":1,\n')).code, 6);
      assert.equal(errorOf(await rawBytes('[1,2,3]\n')).code, 6);
      assert.equal(errorOf(await rawBytes('"ADD"\n')).code, 6);
      assert.equal(errorOf(await rawBytes('\n')).code, 6);
      const slow = errorOf(await rawBytes('{"v":1'));
      assert.equal(slow.code, 6);
      assert.match(slow.msg, /no complete line within 300 ms/);
      // a client that hangs up half way gets nothing and costs nothing
      assert.equal(await rawBytes('{"v":1', true), '');
      assert.deepEqual(refusals, [
        'malformed_json',
        'invalid_request',
        'invalid_request',
        'malformed_json',
        'read_timeout',
      ]);
    });

    it('and the agent keeps serving', async () => {
      assert.equal((await run({ ...ENV, CNI_CONTAINERID: 'after' })).exitCode, 0);
      assert.ok(calls.includes('ADD after'));
    });
  });
});
