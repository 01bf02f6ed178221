// The narrow KV adapter the core's machines run against: one KvOp in, one KvResult out, with
// JetStream's compare-and-set failures turned into `conflict`. Everything else (timeouts, a
// NATS server gone) is thrown, which fails the machine: an operation whose outcome is unknown
// is never reported as done.
import { kvSubjectPrefix } from '@ciliate/contracts';
import { isCasConflict } from '@ciliate/runtime';
import { jetstreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { headers, nuid, type NatsConnection } from '@nats-io/transport-node';

import type { BatchWrite, KvOp, KvResult } from '@ciliate/identity-core';
import { JetStreamPublisher, PublishRefusedError } from './publisher.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the service needs of a bucket; MemoryKv-like fakes can stand in for tests. */
export interface KvExecutor {
  execute(op: KvOp): Promise<KvResult>;
  /** `batch` operations are executed atomically; machines claim with one write. */
  readonly atomic?: boolean;
}

/** How the executor writes: the connection and bucket its writes go to. */
export interface KvWriteTarget {
  readonly nc: NatsConnection;
  readonly bucket: string;
  /** How long a write waits for the stream's acknowledgement. */
  readonly timeoutMs: number;
  /** The bucket's stream takes atomic batches (enableAtomicBatches()). */
  readonly atomic?: boolean;
}

export class JetStreamKvExecutor implements KvExecutor {
  readonly #kv: KV;
  readonly #publisher: JetStreamPublisher;
  readonly #prefix: string;
  readonly #target: KvWriteTarget;

  /**
   * Reads (get, keys) go through `kv`; writes are published to the bucket's subjects by a
   * JetStreamPublisher with the compare-and-set headers JetStream KV uses.
   */
  constructor(kv: KV, target: KvWriteTarget) {
    this.#kv = kv;
    this.#target = target;
    this.#prefix = kvSubjectPrefix(target.bucket);
    this.#publisher = new JetStreamPublisher(target.nc, { timeoutMs: target.timeoutMs });
  }

  /** Whether `batch` operations are executed atomically (else always refused). */
  get atomic(): boolean {
    return this.#target.atomic === true;
  }

  close(): void {
    this.#publisher.close();
  }

  /**
   * Creates `key` if it has no value. A key whose last message is a delete marker (the GC freed
   * it) has no value either: the write then expects that marker's revision, as KV create does.
   */
  async #create(key: string, value: string): Promise<KvResult> {
    const data = encoder.encode(value);
    try {
      const ack = await this.#publisher.publish(this.#prefix + key, data, {
        expectLastSubjectSeq: 0,
      });
      return { kind: 'written', revision: ack.seq };
    } catch (err) {
      if (!isCasConflict(err)) throw err;
    }
    const e = await this.#kv.get(key);
    if (e === null || e.operation === 'PUT') return { kind: 'conflict' };
    return this.#write(key, data, e.revision);
  }

  async #write(key: string, data: Uint8Array, expect?: number): Promise<KvResult> {
    try {
      const ack = await this.#publisher.publish(
        this.#prefix + key,
        data,
        expect === undefined ? {} : { expectLastSubjectSeq: expect },
      );
      return { kind: 'written', revision: ack.seq };
    } catch (err) {
      if (expect !== undefined && isCasConflict(err)) return { kind: 'conflict' };
      throw err;
    }
  }

  /**
   * An atomic batch (JetStream 2.12+, `allow_atomic` on the stream): every message but the last
   * is published without a reply, the last carries the commit and gets the one ack. The server
   * stages the batch and checks every expectation under its lock at commit; an error ack means
   * nothing was stored. A create expects the key's last subject sequence to be 0, so a key whose
   * last message is a delete marker fails the batch, and the sequential create (which handles
   * markers) takes over.
   */
  async #batch(writes: readonly BatchWrite[]): Promise<KvResult> {
    if (!this.atomic || writes.length === 0) return { kind: 'refused' };
    const { nc } = this.#target;
    const id = nuid.next();
    for (let i = 0; i < writes.length - 1; i++) {
      const w = writes[i]!;
      const h = headers();
      h.set('Nats-Batch-Id', id);
      h.set('Nats-Batch-Sequence', String(i + 1));
      if (w.op === 'create') h.set('Nats-Expected-Last-Subject-Sequence', '0');
      nc.publish(this.#prefix + w.key, encoder.encode(w.value), { headers: h });
    }
    const last = writes[writes.length - 1]!;
    try {
      const ack = await this.#publisher.publish(
        this.#prefix + last.key,
        encoder.encode(last.value),
        {
          ...(last.op === 'create' ? { expectLastSubjectSeq: 0 } : {}),
          headers: {
            'Nats-Batch-Id': id,
            'Nats-Batch-Sequence': String(writes.length),
            'Nats-Batch-Commit': '1',
          },
        },
      );
      return { kind: 'written', revision: ack.seq };
    } catch (err) {
      if (isCasConflict(err)) return { kind: 'conflict' };
      // Batch limits, atomic publish turned off since: nothing was stored either.
      if (err instanceof PublishRefusedError) return { kind: 'refused' };
      throw err;
    }
  }

  /** The hot writes return their promise directly; the rest run in #other(). */
  execute(op: KvOp): Promise<KvResult> {
    switch (op.op) {
      case 'create':
        return this.#create(op.key, op.value);
      case 'update':
        return this.#write(op.key, encoder.encode(op.value), op.revision);
      case 'put':
        return this.#write(op.key, encoder.encode(op.value));
      default:
        return this.#other(op);
    }
  }

  async #other(op: Exclude<KvOp, { op: 'create' | 'update' | 'put' }>): Promise<KvResult> {
    switch (op.op) {
      case 'batch':
        return this.#batch(op.writes);
      case 'get': {
        const e = await this.#kv.get(op.key);
        if (e === null || e.operation !== 'PUT') return { kind: 'missing' };
        return { kind: 'value', value: decoder.decode(e.value), revision: e.revision };
      }
      case 'delete':
        try {
          await this.#publisher.publish(this.#prefix + op.key, new Uint8Array(0), {
            headers: { 'KV-Operation': 'DEL' },
            ...(op.revision === undefined ? {} : { expectLastSubjectSeq: op.revision }),
          });
          // The machines do not use the revision of a delete.
          return { kind: 'written', revision: 0 };
        } catch (err) {
          if (op.revision !== undefined && isCasConflict(err)) return { kind: 'conflict' };
          throw err;
        }
      case 'keys': {
        const keys: string[] = [];
        for await (const k of await this.#kv.keys(op.filter)) keys.push(k);
        return { kind: 'keys', keys };
      }
      case 'wait': {
        const ms = op.until - Date.now();
        if (ms > 0) await new Promise((r) => setTimeout(r, ms));
        return { kind: 'waited' };
      }
    }
  }
}

/**
 * Turns on atomic batch publish for a KV bucket's stream when the server has it (2.12+);
 * returns whether batches may be used. A server that refuses the update (older, or limited
 * permissions) leaves the bucket as it was, and allocation uses single writes.
 */
export async function enableAtomicBatches(
  nc: NatsConnection,
  kv: KV,
): Promise<{ enabled: boolean; reason?: string }> {
  const version = nc.info?.version ?? '0.0.0';
  const [major = 0, minor = 0] = version.split('.').map((x) => Number.parseInt(x, 10));
  if (major < 2 || (major === 2 && minor < 12)) {
    return { enabled: false, reason: `nats-server ${version} has no atomic batch publish (2.12+)` };
  }
  const status = await kv.status();
  const config = status.streamInfo.config;
  if (config.allow_atomic === true) return { enabled: true };
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.update(config.name, { ...config, allow_atomic: true });
    return info.config.allow_atomic === true
      ? { enabled: true }
      : { enabled: false, reason: 'the server did not keep allow_atomic on the stream' };
  } catch (err) {
    return { enabled: false, reason: err instanceof Error ? err.message : String(err) };
  }
}
