import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { waitFor } from '@ciliate/testkit';
import { jetstream } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

import { startSecureNats, type SecureNats } from '../testing/secure-nats.js';
import { decodeJson, watchKv, type KvWatchEvent } from './kv-watch.js';

describe('watchKv on a real nats-server', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let kv: KV;
  before(async () => {
    nats = await startSecureNats();
    // The test's own bucket, which no component owns: only the admin may create it.
    nc = await nats.connect();
    kv = await new Kvm(nc).create('watch-test', { history: 1 });
  });
  after(async () => {
    await nc?.close();
    await nats?.close();
  });

  it('delivers current values as initial, signals sync, then follows changes and deletes', async () => {
    await kv.put('a.1', JSON.stringify({ n: 1 }));
    await kv.put('a.2', JSON.stringify({ n: 2 }));
    await kv.put('b.1', JSON.stringify({ n: 3 }));
    await kv.delete('a.2');
    const seen: KvWatchEvent<unknown>[] = [];
    const w = await watchKv(jetstream(nc), kv, { filter: 'a.>', decode: decodeJson }, (ev) =>
      seen.push(ev),
    );
    await w.synced;
    assert.equal(w.isSynced, true);
    assert.deepEqual(
      seen.map((e) => [e.key, e.value, e.initial]),
      [
        ['a.1', { n: 1 }, true],
        ['a.2', undefined, true], // the tombstone of a delete before the watch
      ],
    );
    const rev = await kv.put('a.3', JSON.stringify({ n: 4 }));
    await kv.delete('a.1');
    await waitFor('two changes', () => (seen.length === 4 ? true : undefined));
    assert.deepEqual(
      seen.slice(2).map((e) => [e.key, e.value, e.initial]),
      [
        ['a.3', { n: 4 }, false],
        ['a.1', undefined, false],
      ],
    );
    assert.equal(seen[2]!.revision, rev);
    assert.equal(w.revision, seen[3]!.revision);
    await w.stop();
  });

  it('resumed from a revision, delivers every later change including deletes', async () => {
    const from = await kv.put('c.1', '"x"');
    await kv.put('c.2', '"y"');
    await kv.delete('c.1');
    const seen: KvWatchEvent<unknown>[] = [];
    const w = await watchKv(
      jetstream(nc),
      kv,
      { filter: 'c.>', fromRevision: from + 1, decode: decodeJson },
      (ev) => seen.push(ev),
    );
    await w.synced;
    assert.deepEqual(
      seen.map((e) => [e.key, e.value]),
      [
        ['c.2', 'y'],
        ['c.1', undefined],
      ],
    );
    await w.stop();
  });

  it('reports a value that fails to decode and delivers it as absent', async () => {
    await kv.put('d.1', 'not json');
    const invalid: string[] = [];
    const seen: KvWatchEvent<unknown>[] = [];
    const w = await watchKv(
      jetstream(nc),
      kv,
      { filter: 'd.>', decode: decodeJson, onInvalid: (key) => invalid.push(key) },
      (ev) => seen.push(ev),
    );
    await w.synced;
    assert.deepEqual(invalid, ['d.1']);
    assert.equal(seen[0]?.value, undefined);
    await w.stop();
  });
});
