// The KV executor's write path (JetStreamPublisher) and atomic batches against a real
// nats-server: compare-and-set outcomes, delete markers, no stream, a stopped server, close().
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { startSecureNats, type SecureNats } from '@ciliate/runtime/testing';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import { JetStreamKvExecutor, enableAtomicBatches } from './kv.js';
import {
  JetStreamPublisher,
  PublishRefusedError,
  PublishTimeoutError,
  PublishUnavailableError,
} from './publisher.js';

describe('JetStreamKvExecutor on a real bucket', () => {
  let nats: SecureNats;
  let nc: NatsConnection;
  let kv: KV;
  let exec: JetStreamKvExecutor;

  before(async () => {
    nats = await startSecureNats();
    // Test buckets no component owns: the admin's to create and reconfigure.
    nc = await nats.connect();
    kv = await new Kvm(nc).create('exec-test', { history: 1 });
    exec = new JetStreamKvExecutor(kv, { nc, bucket: 'exec-test', timeoutMs: 2000 });
  });
  after(async () => {
    exec.close();
    await nc.close();
    await nats.close();
  });

  it('create, update and conditional delete succeed or conflict as compare-and-set', async () => {
    const c = await exec.execute({ op: 'create', key: 'id.300', value: '{"a":1}' });
    assert.equal(c.kind, 'written');
    const rev = (c as { revision: number }).revision;
    assert.deepEqual(await exec.execute({ op: 'create', key: 'id.300', value: 'x' }), {
      kind: 'conflict',
    });
    assert.deepEqual(
      await exec.execute({ op: 'update', key: 'id.300', value: 'x', revision: rev + 99 }),
      { kind: 'conflict' },
    );
    const u = await exec.execute({ op: 'update', key: 'id.300', value: '{"a":2}', revision: rev });
    assert.equal(u.kind, 'written');
    const got = await exec.execute({ op: 'get', key: 'id.300' });
    assert.deepEqual(got, {
      kind: 'value',
      value: '{"a":2}',
      revision: (u as { revision: number }).revision,
    });
    assert.deepEqual(await exec.execute({ op: 'delete', key: 'id.300', revision: rev }), {
      kind: 'conflict',
    });
    const d = await exec.execute({
      op: 'delete',
      key: 'id.300',
      revision: (u as { revision: number }).revision,
    });
    assert.equal(d.kind, 'written');
    assert.deepEqual(await exec.execute({ op: 'get', key: 'id.300' }), { kind: 'missing' });
  });

  it('creates a key whose last message is a delete marker (a freed number)', async () => {
    await exec.execute({ op: 'create', key: 'id.301', value: 'a' });
    await exec.execute({ op: 'delete', key: 'id.301' });
    assert.equal((await kv.get('id.301'))?.operation, 'DEL');
    const c = await exec.execute({ op: 'create', key: 'id.301', value: 'b' });
    assert.equal(c.kind, 'written');
    assert.equal(new TextDecoder().decode((await kv.get('id.301'))!.value), 'b');
  });

  it('refuses batches when the stream does not take them, and runs them atomically once it does', async () => {
    const writes = [
      { op: 'create', key: 'id.400', value: 'n' },
      { op: 'create', key: 'labels.h400', value: 'b' },
      { op: 'put', key: 'ref.400.node-1', value: 'r' },
    ] as const;
    assert.deepEqual(await exec.execute({ op: 'batch', writes }), { kind: 'refused' });
    assert.deepEqual(await enableAtomicBatches(nc, kv), { enabled: true });
    const atomic = new JetStreamKvExecutor(kv, {
      nc,
      bucket: 'exec-test',
      timeoutMs: 2000,
      atomic: true,
    });
    try {
      assert.equal((await atomic.execute({ op: 'batch', writes })).kind, 'written');
      for (const w of writes) assert.ok((await kv.get(w.key))?.operation === 'PUT', w.key);
      // The binding exists: the whole second batch is refused, its number is not written.
      const second = [
        { op: 'create', key: 'id.401', value: 'n' },
        { op: 'create', key: 'labels.h400', value: 'b' },
        { op: 'put', key: 'ref.401.node-1', value: 'r' },
      ] as const;
      assert.deepEqual(await atomic.execute({ op: 'batch', writes: second }), {
        kind: 'conflict',
      });
      assert.equal(await kv.get('id.401'), null);
      assert.equal(await kv.get('ref.401.node-1'), null);
    } finally {
      atomic.close();
    }
  });
});

describe('JetStreamPublisher failures', () => {
  it('no stream: unavailable; compare-and-set refusal carries the code; stopped server: timeout; close fails what waits', async () => {
    const nats = await startSecureNats();
    const nc = await connect({ ...nats.options(), reconnectTimeWait: 100 });
    const pub = new JetStreamPublisher(nc, { timeoutMs: 500 });
    try {
      await assert.rejects(
        pub.publish('no.stream.here', new Uint8Array(0)),
        PublishUnavailableError,
      );
      await new Kvm(nc).create('pub-test', { history: 1 });
      const ok = await pub.publish('$KV.pub-test.a', new Uint8Array([1]), {
        expectLastSubjectSeq: 0,
      });
      assert.ok(ok.seq > 0);
      await assert.rejects(
        pub.publish('$KV.pub-test.a', new Uint8Array([2]), { expectLastSubjectSeq: 0 }),
        (err: unknown) => err instanceof PublishRefusedError && err.errCode === 10071,
      );
      await nats.server.stop();
      const t0 = Date.now();
      await assert.rejects(pub.publish('$KV.pub-test.b', new Uint8Array(0)), PublishTimeoutError);
      const waited = Date.now() - t0;
      assert.ok(waited >= 450 && waited < 1500, `timed out after ${waited}ms`);
      const pending = pub.publish('$KV.pub-test.c', new Uint8Array(0));
      pub.close();
      await assert.rejects(pending, PublishUnavailableError);
      await assert.rejects(
        pub.publish('$KV.pub-test.d', new Uint8Array(0)),
        PublishUnavailableError,
      );
    } finally {
      pub.close();
      await nc.close().catch(() => undefined);
      await nats.close();
    }
  });
});
