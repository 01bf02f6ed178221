import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { formatPrefix, prefixContainsIp } from '@ciliate/netaddr';

import { IdentityError } from './errors.js';
import { parseIp, parsePrefix } from './ip.js';
import {
  IPCACHE_SOURCES,
  Ipcache,
  allowOverwrite,
  decodeIpcacheEntry,
  encodeIpcacheEntry,
  ipcacheKey,
  prefixFromIpcacheKey,
  type IpcacheSource,
  type IpcacheUpsert,
} from './ipcache.js';

describe('source precedence', () => {
  it('is Cilium’s AllowOverwrite', () => {
    // existing, may be overwritten by
    const spec: [IpcacheSource, IpcacheSource[]][] = [
      ['kube-apiserver', ['kube-apiserver']],
      ['local', ['local', 'kube-apiserver']],
      ['kvstore', ['kvstore', 'local', 'kube-apiserver']],
      ['custom-resource', ['custom-resource', 'kvstore', 'local', 'kube-apiserver']],
      ['k8s', ['k8s', 'custom-resource', 'kvstore', 'local', 'kube-apiserver']],
      ['generated', ['generated', 'k8s', 'custom-resource', 'kvstore', 'local', 'kube-apiserver']],
      ['restored', IPCACHE_SOURCES.filter((s) => s !== 'unspec')],
      ['unspec', [...IPCACHE_SOURCES]],
    ];
    for (const [existing, allowed] of spec) {
      for (const next of IPCACHE_SOURCES) {
        assert.equal(
          allowOverwrite(existing, next),
          allowed.includes(next),
          `${existing} <- ${next}`,
        );
      }
    }
  });
});

describe('ipcache', () => {
  it('a stronger claim shadows a weaker one, which shows through again when it goes', () => {
    const c = new Ipcache();
    const pod = {
      prefix: '10.0.1.5',
      identity: 1234,
      hostIP: '192.168.1.10',
      ownerKey: 'pod/default/web-1',
    };
    // step, change of what 10.0.1.5/32 resolves to (identity@source), or '-' for none
    const steps: [() => unknown, string][] = [
      [() => c.upsert({ ...pod, source: 'k8s' }), '- -> 1234@k8s'],
      [
        () => c.upsert({ ...pod, identity: 999, source: 'generated', ownerKey: 'gen' }),
        'unchanged',
      ],
      [
        () => c.upsert({ ...pod, identity: 77, source: 'kvstore', ownerKey: 'kv/web-1' }),
        '1234@k8s -> 77@kvstore',
      ],
      [() => c.upsert({ ...pod, source: 'k8s' }), 'unchanged'], // same data again
      [() => c.upsert({ ...pod, identity: 1235, source: 'k8s' }), 'unchanged'], // shadowed update
      [() => c.delete('10.0.1.5/32', 'kv/web-1'), '77@kvstore -> 1235@k8s'],
      [() => c.delete('10.0.1.5', 'pod/default/web-1'), '1235@k8s -> 999@generated'],
      [() => c.delete('10.0.1.5', 'nobody'), 'unchanged'],
      [() => c.delete('10.0.1.5', 'gen'), '999@generated -> -'],
    ];
    const show = (e?: { identity: number; source: string }): string =>
      e === undefined ? '-' : `${e.identity}@${e.source}`;
    for (const [step, want] of steps) {
      const change = step() as
        | {
            before?: { identity: number; source: string };
            after?: { identity: number; source: string };
          }
        | undefined;
      assert.equal(
        change === undefined ? 'unchanged' : `${show(change.before)} -> ${show(change.after)}`,
        want,
      );
    }
    assert.equal(c.size, 0);
  });

  it('among equal sources the latest claim wins', () => {
    const c = new Ipcache();
    c.upsert({ prefix: '10.0.0.1', identity: 300, source: 'k8s', ownerKey: 'a' });
    c.upsert({ prefix: '10.0.0.1', identity: 301, source: 'k8s', ownerKey: 'b' });
    assert.equal(c.get('10.0.0.1')?.identity, 301);
    assert.deepEqual(
      c.claims('10.0.0.1').map((e) => e.ownerKey),
      ['b', 'a'],
    );
  });

  it('resolves longest prefix first and falls back to the world', () => {
    const c = new Ipcache();
    c.upsert({ prefix: '10.0.0.0/8', identity: 16777217, source: 'generated', ownerKey: 'cidr/a' });
    c.upsert({
      prefix: '10.1.0.0/16',
      identity: 16777218,
      source: 'generated',
      ownerKey: 'cidr/b',
    });
    c.upsert({
      prefix: '10.1.2.3',
      identity: 4000,
      hostIP: '192.168.1.2',
      source: 'k8s',
      ownerKey: 'pod/x',
    });
    c.upsert({
      prefix: '2001:db8::/32',
      identity: 16777219,
      source: 'generated',
      ownerKey: 'cidr/c',
    });
    const spec: [string, number][] = [
      ['10.1.2.3', 4000],
      ['10.1.2.4', 16777218],
      ['10.2.0.1', 16777217],
      ['11.0.0.1', 2],
      ['2001:db8::5', 16777219],
      ['2001:db9::5', 2],
    ];
    for (const [ip, id] of spec) assert.equal(c.resolveIdentity(ip), id, ip);
    assert.equal(c.resolveIdentity('11.0.0.1', { dualStack: true }), 9);
    assert.equal(c.resolveIdentity('::1', { dualStack: true }), 10);
    assert.equal(c.lookup('10.1.2.3')?.hostIP, '192.168.1.2');
  });

  it('removes every claim of an owner at once', () => {
    const c = new Ipcache();
    c.upsert({ prefix: '10.0.0.1', identity: 300, source: 'k8s', ownerKey: 'pod/a' });
    c.upsert({ prefix: 'fd00::1', identity: 300, source: 'k8s', ownerKey: 'pod/a' });
    c.upsert({ prefix: '10.0.0.2', identity: 301, source: 'k8s', ownerKey: 'pod/b' });
    assert.deepEqual(
      c.deleteOwner('pod/a').map((x) => x.prefix),
      ['10.0.0.1/32', 'fd00::1/128'],
    );
    assert.deepEqual(
      c.entries().map((e) => e.prefix),
      ['10.0.0.2/32'],
    );
  });

  it('refuses bad entries naming the field', () => {
    const c = new Ipcache();
    const spec: [IpcacheUpsert, string][] = [
      [
        { prefix: '10.0.0.0/33', identity: 300, source: 'k8s', ownerKey: 'a' },
        'entry.prefix: Invalid value: "10.0.0.0/33": prefix length must be 0-32',
      ],
      [
        { prefix: '10.0.0.1', identity: 3 << 24, source: 'k8s', ownerKey: 'a' },
        'entry.identity: Invalid value: 50331648',
      ],
      [
        { prefix: '10.0.0.1', identity: 300, source: 'etcd' as IpcacheSource, ownerKey: 'a' },
        'entry.source: Invalid value: "etcd": must be one of',
      ],
      [
        { prefix: '10.0.0.1', identity: 300, source: 'k8s', ownerKey: '' },
        'entry.ownerKey: Invalid value: "": must not be empty',
      ],
      [
        { prefix: '10.0.0.1', identity: 300, source: 'k8s', ownerKey: 'a', hostIP: 'node-1' },
        'entry.hostIP: Invalid value: "node-1"',
      ],
    ];
    for (const [input, message] of spec) {
      assert.throws(
        () => c.upsert(input),
        (err: unknown) => err instanceof IdentityError && err.message.startsWith(message),
        message,
      );
    }
  });

  it('survives a restart through its snapshot, with the same precedence order', () => {
    const c = new Ipcache();
    c.upsert({ prefix: '10.0.0.1', identity: 300, source: 'k8s', ownerKey: 'a' });
    c.upsert({ prefix: '10.0.0.1', identity: 301, source: 'k8s', ownerKey: 'b' });
    c.upsert({
      prefix: '10.0.0.0/24',
      identity: 302,
      source: 'kvstore',
      ownerKey: 'c',
      encryptKey: 3,
    });
    const d = Ipcache.restore(
      JSON.parse(JSON.stringify(c.snapshot())) as ReturnType<typeof c.snapshot>,
    );
    assert.deepEqual(d.entries(), c.entries());
    assert.deepEqual(d.claims('10.0.0.1'), c.claims('10.0.0.1'));
  });

  describe('a cap on the owners of one prefix', () => {
    const claim = (owner: string, identity = 300): IpcacheUpsert => ({
      prefix: '10.0.0.1',
      identity,
      source: 'k8s',
      ownerKey: owner,
    });
    const refused = (err: unknown): boolean => {
      assert.ok(err instanceof IdentityError, String(err));
      assert.equal(err.code, 'LIMIT_REACHED');
      assert.equal(err.field, 'entry.prefix');
      assert.equal(
        err.message,
        'entry.prefix: Too many claims: "10.0.0.1/32" has 3 owners, the limit is 3; "d" may claim it once another owner deletes its claim',
      );
      return true;
    };

    it('refuses one more owner, and takes it once an owner has gone', () => {
      const c = new Ipcache({ maxClaimsPerPrefix: 3 });
      for (const o of ['a', 'b', 'c']) c.upsert(claim(o));
      assert.throws(() => c.upsert(claim('d')), refused);
      assert.deepEqual(
        c.claims('10.0.0.1').map((e) => e.ownerKey),
        ['c', 'b', 'a'],
        'a refused claim changes nothing',
      );
      // An owner with a claim may still change it; other prefixes have their own count.
      assert.equal(c.upsert(claim('a', 301))?.after?.identity, 301);
      c.upsert({ ...claim('d'), prefix: '10.0.0.2' });
      c.delete('10.0.0.1', 'b');
      c.upsert(claim('d'));
      assert.deepEqual(
        c
          .claims('10.0.0.1')
          .map((e) => e.ownerKey)
          .sort(),
        ['a', 'c', 'd'],
      );
    });

    it('restores a snapshot kept under a higher limit whole, and refuses only new owners', () => {
      const wide = new Ipcache();
      for (const o of ['a', 'b', 'c', 'e']) wide.upsert(claim(o));
      const d = Ipcache.restore(wide.snapshot(), { maxClaimsPerPrefix: 3 });
      assert.equal(d.claims('10.0.0.1').length, 4);
      assert.throws(() => d.upsert(claim('d')), /has 4 owners, the limit is 3/);
      d.upsert(claim('e', 302));
      d.delete('10.0.0.1', 'a');
      assert.throws(() => d.upsert(claim('d')), refused, 'still at the limit with 3 owners');
    });

    it('property: no prefix gains an owner beyond the cap; every other change is taken', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 4 }),
          fc.array(
            fc.record({
              del: fc.boolean(),
              prefix: fc.constantFrom('10.0.0.1', '10.0.0.2'),
              owner: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
              id: fc.integer({ min: 256, max: 260 }),
            }),
            { maxLength: 60 },
          ),
          (max, ops) => {
            const c = new Ipcache({ maxClaimsPerPrefix: max });
            const owners = new Map<string, Set<string>>();
            for (const o of ops) {
              const held = owners.get(o.prefix) ?? new Set<string>();
              owners.set(o.prefix, held);
              if (o.del) {
                c.delete(o.prefix, o.owner);
                held.delete(o.owner);
                continue;
              }
              const mayClaim = held.has(o.owner) || held.size < max;
              try {
                c.upsert({ prefix: o.prefix, identity: o.id, source: 'k8s', ownerKey: o.owner });
                assert.ok(mayClaim, 'taken over the cap');
                held.add(o.owner);
              } catch (err) {
                assert.ok(!mayClaim && err instanceof IdentityError, String(err));
              }
              assert.deepEqual(
                c
                  .claims(o.prefix)
                  .map((e) => e.ownerKey)
                  .sort(),
                [...held].sort(),
              );
            }
          },
        ),
      );
    });
  });

  describe('property: longest-prefix match agrees with a brute-force reference', () => {
    // A narrow address space (10.0.x.y, fd00::x:y) so that prefixes overlap and nest often.
    const v4 = fc
      .tuple(fc.nat(3), fc.nat(255), fc.integer({ min: 8, max: 32 }))
      .map(([a, b, len]) => ({ text: `10.0.${a}.${b}`, len }));
    const v6 = fc
      .tuple(fc.nat(3), fc.nat(0xffff), fc.integer({ min: 100, max: 128 }))
      .map(([a, b, len]) => ({ text: `fd00::${a.toString(16)}:${b.toString(16)}`, len }));
    const op = fc.record({
      del: fc.boolean(),
      at: fc.oneof(v4, v6),
      id: fc.integer({ min: 256, max: 300 }),
      owner: fc.constantFrom('a', 'b', 'c'),
      source: fc.constantFrom<IpcacheSource>('k8s', 'kvstore', 'generated', 'local'),
    });
    it('after any sequence of upserts and deletes', () => {
      fc.assert(
        fc.property(
          fc.array(op, { maxLength: 60 }),
          fc.array(fc.oneof(v4, v6), { maxLength: 30 }),
          (ops, probes) => {
            const c = new Ipcache();
            // Reference: every claim in a list; the effective one per prefix by rank, then recency.
            let claims: {
              prefix: string;
              owner: string;
              id: number;
              source: IpcacheSource;
              seq: number;
            }[] = [];
            ops.forEach((o, seq) => {
              const prefix = formatPrefix(parsePrefix(`${o.at.text}/${o.at.len}`));
              if (o.del) {
                c.delete(prefix, o.owner);
                claims = claims.filter((x) => !(x.prefix === prefix && x.owner === o.owner));
                return;
              }
              c.upsert({ prefix, identity: o.id, source: o.source, ownerKey: o.owner });
              const prev = claims.find((x) => x.prefix === prefix && x.owner === o.owner);
              const same = prev !== undefined && prev.id === o.id && prev.source === o.source;
              claims = claims.filter((x) => !(x.prefix === prefix && x.owner === o.owner));
              claims.push({
                prefix,
                owner: o.owner,
                id: o.id,
                source: o.source,
                seq: same ? prev.seq : seq,
              });
            });
            const rank = (s: IpcacheSource): number => IPCACHE_SOURCES.indexOf(s);
            for (const probe of [...probes, ...ops.map((o) => o.at)]) {
              const addr = parseIp(probe.text);
              let best: (typeof claims)[number] | undefined;
              let bestLen = -1;
              for (const x of claims) {
                const p = parsePrefix(x.prefix);
                if (!prefixContainsIp(p, addr)) continue;
                const better =
                  p.length > bestLen ||
                  (p.length === bestLen &&
                    (rank(x.source) > rank(best!.source) ||
                      (x.source === best!.source && x.seq > best!.seq)));
                if (better) {
                  best = x;
                  bestLen = p.length;
                }
              }
              const got = c.lookup(probe.text);
              assert.equal(got?.identity, best?.id, probe.text);
              assert.equal(got?.prefix, best?.prefix, probe.text);
            }
          },
        ),
      );
    });
  });
});

describe('ipcache KV form', () => {
  it('keys are three subject tokens', () => {
    const spec: [string, string][] = [
      ['10.0.0.0/8', 'v4.10-0-0-0.8'],
      ['10.1.2.3', 'v4.10-1-2-3.32'],
      ['2001:db8::/32', 'v6.2001-db8--.32'],
      ['::/0', 'v6.--.0'],
      ['::ffff:10.1.2.3', 'v6.--ffff-10_1_2_3.128'],
    ];
    for (const [prefix, key] of spec) {
      assert.equal(ipcacheKey(prefix), key);
      assert.equal(prefixFromIpcacheKey(key), formatPrefix(parsePrefix(prefix)));
    }
    assert.throws(() => prefixFromIpcacheKey('v4.10-0-0-1.8'), /not in canonical form/);
    assert.throws(() => prefixFromIpcacheKey('v5.x.1'), /not an ipcache key/);
  });

  it('property: keys round-trip', () => {
    const v4 = fc
      .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }))
      .map(([b, l]) => `${b.join('.')}/${l}`);
    const v6 = fc
      .tuple(
        fc.array(fc.constantFrom(0, 1, 0xffff, 0xdb8), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 128 }),
      )
      .map(([g, l]) => `${g.map((x) => x.toString(16)).join(':')}/${l}`);
    fc.assert(
      fc.property(fc.oneof(v4, v6), (p) => {
        const key = ipcacheKey(p);
        assert.match(key, /^v[46]\.[-_0-9a-f]+\.[0-9]+$/);
        assert.equal(prefixFromIpcacheKey(key), formatPrefix(parsePrefix(p)));
      }),
    );
  });

  it('entries encode and decode', () => {
    const e = {
      prefix: '10.1.2.3/32',
      identity: 4000,
      hostIP: '192.168.1.2',
      source: 'k8s' as const,
      ownerKey: 'pod/x',
    };
    assert.equal(
      encodeIpcacheEntry(e),
      '{"v":1,"prefix":"10.1.2.3/32","identity":4000,"hostIP":"192.168.1.2","source":"k8s","ownerKey":"pod/x"}',
    );
    assert.deepEqual(decodeIpcacheEntry(encodeIpcacheEntry(e)), e);
    assert.throws(
      () =>
        decodeIpcacheEntry(
          '{"v":1,"prefix":"x","identity":1,"source":"k8s","ownerKey":"a"}',
          'v4.x',
        ),
      (err: unknown) =>
        err instanceof IdentityError &&
        err.code === 'INVALID_RECORD' &&
        err.message.startsWith('v4.x.prefix: Invalid value: "x"'),
    );
  });
});
