// Ring buffer consumption: a native thread drains the ring and batches reach JavaScript on the
// event loop, which stays free meanwhile; closing is immediate, also with a full queue.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { sleep, waitFor } from '@ciliate/testkit';

import { bpfObjectPath } from './datapath/datapath.js';
import { BpfObject } from './object.js';
import { RingBufferReader } from './ringbuf.js';
import { pinDir } from './testing/support.js';

const FRAME = Buffer.alloc(64);

describe('ring buffer reader', () => {
  const pins = pinDir('rb');
  let obj: BpfObject;
  before(() => {
    obj = BpfObject.load(bpfObjectPath('tests/maps_test'), {
      pinRoot: pins.dir,
      constants: { test_magic: 7 },
    });
  });
  after(() => {
    obj.close();
    pins.remove();
  });

  it('delivers every record, in order, in batches', async () => {
    const seqs: number[] = [];
    let batches = 0;
    const reader = RingBufferReader.open(
      obj.map('test_events'),
      (records) => {
        batches++;
        for (const r of records) {
          assert.equal(r.length, 16);
          assert.equal(r.readUInt32LE(4), 7, 'the load-time constant');
          seqs.push(r.readUInt32LE(0));
        }
      },
      { maxBatch: 128 },
    );
    try {
      const first = seqs.length;
      obj.program('emit_event').testRun(FRAME, 5000);
      await waitFor('5000 records', () => (seqs.length - first >= 5000 ? true : undefined), {
        timeoutMs: 10_000,
      });
      for (let i = 1; i < seqs.length; i++)
        assert.equal(seqs[i], seqs[i - 1]! + 1, 'in order, none lost');
      assert.ok(batches >= 5000 / 128, `${batches} batches of at most 128`);
      const stats = reader.stats();
      assert.equal(stats.samples, 5000);
    } finally {
      reader.close();
    }
  });

  it('keeps the event loop free while records stream in', async () => {
    let received = 0;
    const reader = RingBufferReader.open(obj.map('test_events'), (records) => {
      received += records.length;
    });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      for (let round = 0; round < 20; round++) {
        obj.program('emit_event').testRun(FRAME, 2000);
        await sleep(20);
      }
      await waitFor('40000 records', () => (received >= 40_000 ? true : undefined), {
        timeoutMs: 15_000,
      });
      // the loop ran its timer between batches rather than being held by the reader
      assert.ok(ticks >= 20, `${ticks} timer ticks while 40000 records arrived`);
    } finally {
      clearInterval(timer);
      reader.close();
    }
  });

  it('closes at once even when the delivery queue is full, and delivers nothing after', async () => {
    let received = 0;
    const reader = RingBufferReader.open(
      obj.map('test_events'),
      (records) => {
        received += records.length;
      },
      { maxBatch: 1 },
    );
    // the loop is busy (synchronous test runs) while the thread fills its 64-batch queue
    obj.program('emit_event').testRun(FRAME, 3000);
    await sleep(0);
    const t0 = Date.now();
    reader.close();
    assert.ok(Date.now() - t0 < 500, 'close did not wait for JavaScript to drain the queue');
    const at = received;
    await sleep(200);
    assert.equal(received, at, 'nothing delivered after close');
    assert.throws(() => reader.stats(), { code: 'ERR_CLOSED' });
    reader.close();
  });

  it('routes exceptions of the callback to onError', async () => {
    const errors: Error[] = [];
    const reader = RingBufferReader.open(
      obj.map('test_events'),
      () => {
        throw new Error('consumer bug');
      },
      { onError: (e) => errors.push(e) },
    );
    try {
      obj.program('emit_event').testRun(FRAME, 3);
      await waitFor('an error', () => (errors.length > 0 ? true : undefined));
      assert.equal(errors[0]?.message, 'consumer bug');
    } finally {
      reader.close();
    }
  });

  it('refuses maps that are not ring buffers', () => {
    assert.throws(() => RingBufferReader.open(obj.map('test_hash'), () => undefined), {
      code: 'ERR_INVALID_ARG',
    });
  });
});
