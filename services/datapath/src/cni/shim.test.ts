// The native executable (bin/ciliate-cni, built from src/cni/shim.c) run as a runtime runs it,
// against the agent's real socket server (a fake endpoint manager behind it; no root needed):
// on the fast path its answers must be exactly the full TypeScript plugin's (dist/cni/main.js
// run directly) byte for byte, and every case it must not forward must reach that plugin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { startCniServer, type CniServer } from './server.js';
import { PLUGIN } from '../testing/harness.js';
import { CniErrorCode } from './errors.js';
import { buildAddResult } from './result.js';

const FULL_PLUGIN = fileURLToPath(new URL('./main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), `ciliate-shim-${process.pid}-`));
const socketPath = join(dir, 'cni.sock');
const brokenPath = join(dir, 'broken.sock');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs an executable with exactly `env` (plus PATH) and `stdin`, as a runtime does. */
function run(argv: string[], env: Record<string, string>, stdin: string | Buffer): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin);
  });
}

/** The native executable, unable to start Node: any answer it gives came from the agent. */
const fastOnly = (env: Record<string, string>, stdin: string | Buffer) =>
  run([PLUGIN], { ...env, CILIATE_CNI_NODE: '/nonexistent/node' }, stdin);
const shim = (env: Record<string, string>, stdin: string | Buffer) => run([PLUGIN], env, stdin);
const full = (env: Record<string, string>, stdin: string | Buffer) =>
  run([process.execPath, FULL_PLUGIN], env, stdin);

const ADD = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/p1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};
const conf = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: '1.1.0',
    name: 'ciliate',
    type: 'ciliate-cni',
    socketPath,
    ...extra,
  });
const json = (r: Run) => JSON.parse(r.stdout) as { code?: number; msg?: string };

describe('the native ciliate-cni executable', () => {
  let server: CniServer;
  let broken: Server;
  let brokenConnections = 0;
  const calls: string[] = [];

  before(async () => {
    server = await startCniServer({
      socketPath,
      endpoints: {
        add(req) {
          calls.push(`ADD ${req.containerId} ${JSON.stringify(req.args.raw)}`);
          return Promise.resolve(
            buildAddResult(req.config.cniVersion, {
              hostIfname: 'lxc00000000000',
              hostMac: '02:00:00:00:00:01',
              ifname: req.ifname,
              mac: '02:00:00:00:00:02',
              mtu: 1500,
              netns: req.netns!,
              address: '10.0.0.2/32',
              gateway: '10.0.0.1',
            }),
          );
        },
        del(req) {
          calls.push(`DEL ${req.containerId}`);
          return Promise.resolve();
        },
        check: () => Promise.resolve(),
        gc: () => Promise.resolve([]),
      },
      ready: () => Promise.resolve({ ok: true }),
      // no namespaces in this test: CNI_NETNS is checked in netns.test.ts and the priv tests
      checkNetns: () => Promise.resolve(),
    });
    // answers every connection with something that is not `<code>\n<stdout>`
    broken = createServer((s) => {
      brokenConnections++;
      s.once('data', () => s.end('garbage'));
    });
    await new Promise<void>((r) => broken.listen(brokenPath, r));
  });

  after(async () => {
    await server.close();
    await new Promise<void>((r) => broken.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('forwards to the agent and answers exactly as the full plugin does', async () => {
    const cases: [Record<string, string>, string][] = [
      [ADD, conf()],
      [{ ...ADD, CNI_COMMAND: 'DEL' }, conf()],
      [{ CNI_COMMAND: 'STATUS', CNI_PATH: '/opt/cni/bin' }, conf()],
      // errors that quote the input back: control characters, quotes, backslashes, non-ASCII
      [ADD, conf({ 'odd\u0001\u001f"\\\u007fé€😀': 1 })],
      [{ ...ADD, CNI_ARGS: 'IgnoreUnknown=0;Wéird\tkey="x\\y"' }, conf()],
      [{ ...ADD, CNI_IFNAME: 'eth0\n' }, conf()],
      [{ ...ADD, CNI_CONTAINERID: 'c2', CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=pé😀' }, conf()],
      // a big config (whitespace is JSON): partial reads and writes on both sockets
      [{ ...ADD, CNI_CONTAINERID: 'big' }, conf().replace('{', '{' + ' '.repeat(300_000))],
      // the socket path written with escapes, and the last of two socketPath keys (JSON.parse's)
      [ADD, conf({ socketPath: socketPath.replaceAll('/', '\\/') }).replaceAll('\\\\/', '\\/')],
      [ADD, `{"socketPath":"/nonexistent.sock",${conf().slice(1)}`],
      [ADD, conf().replace('"socketPath"', '"socket\\u0050ath"')],
    ];
    for (const [env, stdin] of cases) {
      const fast = await fastOnly(env, stdin);
      const ref = await full(env, stdin);
      const what = `${JSON.stringify(env)} ${stdin.slice(0, 200)}`;
      assert.equal(fast.stderr, '', what);
      assert.equal(fast.stdout, ref.stdout, what);
      assert.equal(fast.code, ref.code, what);
      assert.ok(!fast.stdout.includes('"code":999'), `${what}: fell back`);
    }
    assert.ok(calls.includes('ADD c1 {}'), calls.join('\n'));
    assert.ok(calls.includes('ADD c2 {"IgnoreUnknown":"1","K8S_POD_NAME":"pé😀"}'));
    assert.ok(calls.includes('ADD big {}'));
  });

  it('VERSION runs the full plugin with the same stdin, never the agent', async () => {
    const before = calls.length;
    const stdin = JSON.stringify({ cniVersion: '0.4.0' }) + ' '.repeat(200_000);
    const r = await shim({ CNI_COMMAND: 'VERSION' }, stdin);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const v = JSON.parse(r.stdout) as { cniVersion: string; supportedVersions: string[] };
    assert.equal(v.cniVersion, '0.4.0', 'the config on stdin reached the full plugin');
    assert.ok(v.supportedVersions.includes('1.1.0'));
    assert.equal(calls.length, before);
    // and it is the full plugin that answers: without Node there is no VERSION
    const none = await fastOnly({ CNI_COMMAND: 'VERSION' }, stdin);
    assert.equal(none.code, 1);
    assert.equal(json(none).code, 999);
    assert.match(json(none).msg ?? '', /cannot run the full plugin: node \/nonexistent\/node/);
  });

  it('finds the full plugin from a copy elsewhere, or where $CILIATE_CNI_FALLBACK says', async () => {
    const copy = join(dir, 'ciliate-cni');
    copyFileSync(PLUGIN, copy);
    chmodSync(copy, 0o755);
    // no ../cni/main.js beside the copy: the path compiled in at build time
    const r = await run([copy], { CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.0.0"}');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal((JSON.parse(r.stdout) as { cniVersion: string }).cniVersion, '1.0.0');
    const moved = await run(
      [copy],
      { CNI_COMMAND: 'VERSION', CILIATE_CNI_FALLBACK: join(dir, 'nowhere.js') },
      '{}',
    );
    assert.equal(json(moved).code, 999);
    assert.match(json(moved).msg ?? '', /cannot run the full plugin: entry .*nowhere\.js/);
  });

  it('an agent that is down: error 11 from the full plugin, STATUS 50', async () => {
    const down = conf({ socketPath: join(dir, 'nobody.sock') });
    const r = await shim(ADD, down);
    assert.equal(r.code, 1);
    assert.equal(json(r).code, CniErrorCode.TRY_AGAIN_LATER);
    assert.match(json(r).msg ?? '', /node agent unreachable at .*nobody\.sock/);
    const st = await shim({ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, down);
    assert.equal(json(st).code, CniErrorCode.NOT_READY);
  });

  it('a config it cannot read with certainty goes to the full plugin', async () => {
    for (const [stdin, code, msg] of [
      ['garbage', CniErrorCode.DECODE_FAILURE, /./],
      ['{"cniVersion":"1.1.0",}', CniErrorCode.DECODE_FAILURE, /./],
      ['', CniErrorCode.DECODE_FAILURE, /./],
      ['[1,2]', CniErrorCode.DECODE_FAILURE, /./],
      [conf({ socketPath: 42 }), CniErrorCode.INVALID_NETWORK_CONFIG, /^socketPath: /],
      [conf({ socketPath: 'relative.sock' }), CniErrorCode.INVALID_NETWORK_CONFIG, /^socketPath/],
    ] as const) {
      const r = await shim(ADD, stdin);
      const ref = await full(ADD, stdin);
      assert.equal(r.stdout, ref.stdout, stdin);
      assert.equal(r.code, 1, stdin);
      assert.equal(json(r).code, code, `${stdin}: ${r.stdout}`);
      assert.match(json(r).msg ?? '', msg);
      // and without Node it does not answer these itself
      assert.equal(json(await fastOnly(ADD, stdin)).code, 999, stdin);
    }
    // a lone surrogate in the socket path has no UTF-8 form: not forwarded either
    const lone = conf().replace(`"${socketPath}"`, `"${socketPath}\\ud800"`);
    assert.equal(json(await fastOnly(ADD, lone)).code, 999);
  });

  it('a malformed answer from the agent goes to the full plugin', async () => {
    const r = await shim(ADD, conf({ socketPath: brokenPath }));
    assert.equal(r.code, 1);
    assert.equal(json(r).code, CniErrorCode.TRY_AGAIN_LATER, r.stdout);
    // the invocation, then the full plugin's own request
    assert.equal(brokenConnections, 2);
  });
});
