import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseManifests } from '@ciliate/resources';
import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { ResourceStore } from '@ciliate/store';
import { spawnNode } from '@ciliate/testkit';

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

function seedDir(): string {
  if (process.env.CILIATE_FIXTURES_DIR)
    return join(process.env.CILIATE_FIXTURES_DIR, 'seed-manifests');
  let dir = dirname(CLI);
  while (dir !== dirname(dir)) {
    const candidate = join(dir, 'fixtures', 'seed-manifests');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error('fixtures/seed-manifests not found in the repository');
}

describe('ciliate apply, get and delete', () => {
  let nats: SecureNats;
  let tmp: string;
  // apply and delete write: the admin's; get only reads: a viewer's.
  const run = async (
    args: string[],
    role: 'viewer' | 'admin' = args[0] === 'get' ? 'viewer' : 'admin',
  ): Promise<{ code: number | null; out: string }> => {
    const p = spawnNode(CLI, args, {
      env: { CILIATE_CONTEXT_FILE: '/nonexistent', ...nats.env({ role }) },
    });
    const { code } = await p.exited;
    return { code, out: p.output() };
  };
  before(async () => {
    nats = await startSecureNats();
    // The store's buckets are the kube-bridge's (or an operator's) to create.
    const admin = await nats.connect();
    try {
      await ResourceStore.open(admin);
    } finally {
      await admin.close();
    }
    tmp = mkdtempSync(join(tmpdir(), 'ciliate-cli-'));
  });
  after(async () => {
    rmSync(tmp, { recursive: true, force: true });
    await nats?.close();
  });

  it('applies every supported seed manifest and gets it back unchanged in meaning', async () => {
    const seeds = readdirSync(seedDir())
      .filter((f) => f.endsWith('.yaml'))
      .sort();
    assert.ok(seeds.length >= 7);
    for (const file of seeds) {
      const path = join(seedDir(), file);
      const { readFileSync } = await import('node:fs');
      const original = parseManifests(readFileSync(path, 'utf8'), file);
      const applied = await run(['apply', '-f', path]);
      if (!original.ok) {
        // The seeds' unsupported kinds are refused loudly, never dropped.
        assert.equal(applied.code, 1, `${file}: ${applied.out}`);
        assert.match(applied.out, /is not supported by Ciliate/);
        assert.match(applied.out, /nothing was applied/);
        continue;
      }
      assert.equal(applied.code, 0, `${file}: ${applied.out}`);
      for (const obj of original.objects) {
        assert.match(applied.out, new RegExp(`/${obj.metadata.name} created`));
        const kind = obj.kind.toLowerCase();
        const args = [
          'get',
          kind,
          obj.metadata.name!,
          '-o',
          'yaml',
          ...(obj.metadata.namespace ? ['-n', obj.metadata.namespace] : []),
        ];
        const got = await run(args);
        assert.equal(got.code, 0, got.out);
        const back = parseManifests(got.out, 'get');
        assert.ok(back.ok, JSON.stringify(!back.ok && back.errors));
        const strip = (o: object): unknown => {
          const { metadata, ...rest } = o as { metadata: Record<string, unknown> };
          const {
            uid: _u,
            creationTimestamp: _c,
            generation: _g,
            resourceVersion: _r,
            ...meta
          } = metadata;
          return { ...rest, metadata: meta };
        };
        assert.deepEqual(
          strip(back.objects[0]!),
          strip(obj),
          `${file}: ${obj.kind} ${obj.metadata.name} round-trips`,
        );
      }
      const again = await run(['apply', '-f', path]);
      assert.match(again.out, /unchanged/);
    }
  });

  it('lists with short names, across namespaces, as a table', async () => {
    const svc = await run(['get', 'svc', '-A']);
    assert.equal(svc.code, 0, svc.out);
    assert.match(svc.out, /^NAMESPACE\s+NAME\s+TYPE/m);
    assert.match(svc.out, /^media\s+plex\s+LoadBalancer/m);
    const cnp = await run(['get', 'cnp', '-A', '-o', 'json']);
    const list = JSON.parse(cnp.out) as { kind: string; items: { metadata: { name: string } }[] };
    assert.equal(list.kind, 'List');
    assert.ok(list.items.some((i) => i.metadata.name === 'allow-frontend-http'));
    const cec = await run(['get', 'cec']);
    assert.equal(cec.code, 1);
    assert.match(cec.out, /not supported/);
    const missing = await run(['get', 'svc', 'nope', '-n', 'media']);
    assert.equal(missing.code, 1);
    assert.match(missing.out, /^Error from server \(NotFound\): services "nope" not found/m);
  });

  it('applies nothing when one document of a file is invalid, and names the field', async () => {
    const file = join(tmp, 'mixed.yaml');
    writeFileSync(
      file,
      `apiVersion: v1
kind: Namespace
metadata:
  name: half-applied
---
apiVersion: cilium.io/v2alpha1
kind: CiliumLoadBalancerIPPool
metadata:
  name: broken-pool
spec:
  blocks:
    - cidr: 10.0.0.0/33
`,
    );
    const r = await run(['apply', '-f', file]);
    assert.equal(r.code, 1);
    assert.match(r.out, /spec\.blocks\[0\]\.cidr/);
    assert.match(r.out, /nothing was applied/);
    const ns = await run(['get', 'ns', 'half-applied']);
    assert.equal(ns.code, 1, 'the valid document was not applied either');
  });

  it('a viewer gets, and cannot apply or delete', async () => {
    const file = join(tmp, 'viewer.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: from-viewer\n');
    const applied = await run(['apply', '-f', file], 'viewer');
    assert.equal(applied.code, 1, applied.out);
    assert.match(
      applied.out,
      /Permissions Violation for Publish to "\$KV\.ciliate-resources\.Namespace\._\.from-viewer"/,
    );
    assert.equal((await run(['get', 'ns', 'from-viewer'])).code, 1, 'nothing was applied');
    const del = await run(['delete', 'svc', 'plex', '-n', 'media'], 'viewer');
    assert.equal(del.code, 1, del.out);
    assert.match(
      del.out,
      /Permissions Violation for Publish to "\$KV\.ciliate-resources[^"]*\.plex"/,
    );
    const kept = await run(['get', 'svc', 'plex', '-n', 'media']);
    assert.equal(kept.code, 0, kept.out);
  });

  it('deletes by file and by kind and name', async () => {
    const pool = join(seedDir(), '05-lb-ippool.yaml');
    const del = await run(['delete', '-f', pool]);
    assert.equal(del.code, 0, del.out);
    assert.match(del.out, /ciliumloadbalancerippool.cilium.io "default-pool" deleted/);
    const gone = await run(['get', 'ippools']);
    assert.match(gone.out, /No resources found/);
    const byName = await run(['delete', 'svc', 'plex', '-n', 'media']);
    assert.equal(byName.code, 0, byName.out);
    const twice = await run(['delete', 'svc', 'plex', '-n', 'media']);
    assert.equal(twice.code, 1);
    assert.equal(
      (await run(['delete', 'svc', 'plex', '-n', 'media', '--ignore-not-found'])).code,
      0,
    );
  });
});
