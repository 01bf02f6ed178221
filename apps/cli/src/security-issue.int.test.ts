// `ciliate security issue`: the files of every principal, owner-only where secret; a nats-server
// that includes the issued block admits the issued credentials and nobody else; issuing again
// rotates (same CA, new nkeys, the old ones refused once the server has the new block).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { NODE_ROLES, ROLES, principalName, type Principal } from '@ciliate/contracts';
import { natsConnectionOptions } from '@ciliate/runtime';
import { spawnNode, startNats, type NatsServer } from '@ciliate/testkit';
import { connect, nkeys } from '@nats-io/transport-node';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

interface Issued {
  dir: string;
  newCa: boolean;
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  hosts: string[];
  includeFile: string;
  principals: {
    name: string;
    nkeyPublic: string;
    nkeySeedFile: string;
    certFile: string;
    keyFile: string;
  }[];
}

async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnNode(CLI, args, { env: { CILIATE_CONTEXT_FILE: '/nonexistent/context.json' } });
  // the child does not keep the test alive (spawnNode unrefs it): this does, until it is done
  const alive = setInterval(() => undefined, 1000);
  try {
    // 'close': its output is all read
    const code = await new Promise<number | null>((r) => p.child.once('close', (c) => r(c)));
    return { code, out: p.output() };
  } finally {
    clearInterval(alive);
  }
}

async function issue(args: string[]): Promise<Issued> {
  const { code, out } = await cli(['security', 'issue', ...args, '-o', 'json']);
  assert.equal(code, 0, out);
  return JSON.parse(out) as Issued;
}

const mode = (file: string): number => statSync(file).mode & 0o777;

describe('ciliate security issue', () => {
  const root = mkdtempSync(join(tmpdir(), 'ciliate-security-issue-'));
  const dir = join(root, 'security');
  let nats: NatsServer | undefined;
  after(async () => {
    await nats?.close();
    rmSync(root, { recursive: true, force: true });
  });

  const DATAPATH_A: Principal = { role: 'datapath', node: 'node-a' };
  const options = (issued: Issued, p: Principal, seedFile?: string) => {
    const files = issued.principals.find((x) => x.name === principalName(p))!;
    return natsConnectionOptions({
      servers: `tls://127.0.0.1:${nats!.port}`,
      name: 'test',
      nkeySeedFile: seedFile ?? files.nkeySeedFile,
      tlsCaFile: issued.caFile,
      tlsCertFile: files.certFile,
      tlsKeyFile: files.keyFile,
    });
  };

  it('refuses a bad node or host naming the flag, and a missing --dir', async () => {
    const node = await cli(['security', 'issue', '--dir', dir, '--node', 'Node_A']);
    assert.equal(node.code, 2);
    assert.match(node.out, /--node: Invalid value: "Node_A": must be a lower-case DNS-1123/);
    const host = await cli(['security', 'issue', '--dir', dir, '--host', '10.0.0.300']);
    assert.equal(host.code, 2);
    assert.match(host.out, /--host: Invalid value: "10\.0\.0\.300"/);
    const noDir = await cli(['security', 'issue']);
    assert.equal(noDir.code, 2);
    assert.match(noDir.out, /--dir: Required value/);
    const mount = await cli(['security', 'issue', '--dir', dir, '--mount', 'etc/ciliate']);
    assert.equal(mount.code, 2);
    assert.match(mount.out, /--mount: Invalid value: "etc\/ciliate": must be an absolute path/);
  });

  it('--mount: the block names the server files where nats-server sees the directory', async () => {
    const issued = await issue([
      '--dir',
      join(root, 'mounted'),
      '--mount',
      '/etc/ciliate/security',
    ]);
    const conf = readFileSync(issued.includeFile, 'utf8');
    for (const f of ['ca.crt', 'server.crt', 'server.key']) {
      assert.match(conf, new RegExp(`"/etc/ciliate/security/${f.replace('.', '\\.')}"`), f);
    }
    assert.ok(!conf.includes(root), 'no path of the issuing machine');
  });

  it('issues every principal, secrets owner-only; a server including the block admits them', async () => {
    const issued = await issue(['--dir', dir, '--node', 'node-a', '--host', 'nats.example']);
    assert.equal(issued.dir, dir);
    assert.equal(issued.newCa, true);
    assert.deepEqual(issued.hosts, ['127.0.0.1', 'localhost', 'nats.example']);
    const want = [
      ...ROLES.filter((r) => !NODE_ROLES.has(r)).map((role) => principalName({ role })),
      ...[...NODE_ROLES].map((role) => principalName({ role, node: 'node-a' })),
    ].sort();
    assert.deepEqual(
      issued.principals.map((p) => p.name),
      want,
    );
    assert.equal(mode(dir), 0o700);
    for (const f of [issued.caKeyFile, issued.serverKeyFile, issued.includeFile]) {
      assert.equal(mode(f), 0o600, f);
    }
    for (const p of issued.principals) {
      assert.equal(mode(p.nkeySeedFile), 0o600, p.nkeySeedFile);
      assert.equal(mode(p.keyFile), 0o600, p.keyFile);
      assert.ok(statSync(p.certFile).size > 0, p.certFile);
      const seed = readFileSync(p.nkeySeedFile, 'utf8').trim();
      assert.equal(nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey(), p.nkeyPublic);
    }
    assert.match(
      readFileSync(issued.includeFile, 'utf8'),
      new RegExp(issued.principals[0]!.nkeyPublic),
    );

    nats = await startNats({
      // nats-server resolves an include against the configuration's own directory
      extraConfig: (d) => `include "${relative(d, issued.includeFile)}"`,
    });
    const nc = await connect(options(issued, DATAPATH_A));
    await nc.flush();
    await nc.close();
    // an nkey the block does not list, even with an issued certificate
    const stranger = join(root, 'stranger.seed');
    await writeFile(stranger, new TextDecoder().decode(nkeys.createUser().getSeed()));
    await assert.rejects(connect(options(issued, DATAPATH_A, stranger)), /authorization/i);
  });

  it('issuing again rotates: the CA is kept, every nkey is new, the old ones are refused', async () => {
    const before = await issue(['--dir', dir, '--node', 'node-a']);
    const oldSeed = join(root, 'old.seed');
    const a = before.principals.find((p) => p.name === principalName(DATAPATH_A))!;
    await writeFile(oldSeed, readFileSync(a.nkeySeedFile));
    const ca = readFileSync(before.caFile, 'utf8');

    const after = await issue(['--dir', dir, '--node', 'node-a']);
    assert.equal(after.newCa, false);
    assert.equal(readFileSync(after.caFile, 'utf8'), ca, 'the CA is kept');
    for (const p of after.principals) {
      const old = before.principals.find((x) => x.name === p.name)!;
      assert.notEqual(p.nkeyPublic, old.nkeyPublic, `${p.name} has a new nkey`);
      assert.equal(mode(p.nkeySeedFile), 0o600, p.nkeySeedFile);
    }
    // the server with the new block (started again: the runtime's rotation test covers SIGHUP)
    await nats!.stop();
    await nats!.start();
    const nc = await connect(options(after, DATAPATH_A));
    await nc.flush();
    await nc.close();
    await assert.rejects(connect(options(after, DATAPATH_A, oldSeed)), /authorization/i);
  });
});
