// The narrow KV adapter the core's machines run against: one KvOp in, one KvResult out, with
// JetStream's compare-and-set failures turned into `conflict`. Everything else (timeouts, a
// NATS server gone) is thrown, which fails the machine: an operation whose outcome is unknown
// is never reported as done.
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';

import type { KvOp, KvResult } from '../core/allocation.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function isCasConflict(err: unknown): boolean {
  const cause = err instanceof Error ? (err as { cause?: unknown }).cause : undefined;
  const text = `${err instanceof Error ? err.message : String(err)} ${cause instanceof Error ? cause.message : ''}`;
  return /wrong last sequence|key exists|10071|10164/i.test(text);
}

/** What the service needs of a bucket; MemoryKv-like fakes can stand in for tests. */
export interface KvExecutor {
  execute(op: KvOp): Promise<KvResult>;
}

export class JetStreamKvExecutor implements KvExecutor {
  constructor(private readonly kv: KV) {}

  async execute(op: KvOp): Promise<KvResult> {
    try {
      switch (op.op) {
        case 'get': {
          const e = await this.kv.get(op.key);
          if (e === null || e.operation !== 'PUT') return { kind: 'missing' };
          return { kind: 'value', value: decoder.decode(e.value), revision: e.revision };
        }
        case 'create':
          return {
            kind: 'written',
            revision: await this.kv.create(op.key, encoder.encode(op.value)),
          };
        case 'update':
          return {
            kind: 'written',
            revision: await this.kv.update(op.key, encoder.encode(op.value), op.revision),
          };
        case 'put':
          return { kind: 'written', revision: await this.kv.put(op.key, encoder.encode(op.value)) };
        case 'delete':
          await this.kv.delete(
            op.key,
            op.revision === undefined ? {} : { previousSeq: op.revision },
          );
          // JetStream does not return the revision of a delete; the machines do not use it.
          return { kind: 'written', revision: 0 };
        case 'keys': {
          const keys: string[] = [];
          for await (const k of await this.kv.keys(op.filter)) keys.push(k);
          return { kind: 'keys', keys };
        }
        case 'wait': {
          const ms = op.until - Date.now();
          if (ms > 0) await new Promise((r) => setTimeout(r, ms));
          return { kind: 'waited' };
        }
      }
    } catch (err) {
      if ((op.op === 'create' || op.op === 'update' || op.op === 'delete') && isCasConflict(err)) {
        return { kind: 'conflict' };
      }
      throw err;
    }
  }
}

export interface BucketWatch {
  /** Resolves once every value that existed when the watch started has been delivered. */
  readonly synced: Promise<void>;
  readonly isSynced: boolean;
  stop(): Promise<void>;
}

/**
 * Every current value of a bucket under `filter` (deletes as tombstones), then every change, in
 * revision order, on an ordered consumer that resumes by itself after a disconnect.
 * `initial` is true for entries that were there when the watch started.
 */
export async function watchBucket(
  js: JetStreamClient,
  kv: KV,
  filter: string,
  onEntry: (key: string, value: string | undefined, revision: number, initial: boolean) => void,
): Promise<BucketWatch> {
  const status = await kv.status();
  const stream = status.streamInfo.config.name;
  const prefix = `$KV.${status.bucket}.`;
  const consumer = await js.consumers.get(stream, {
    filter_subjects: [`${prefix}${filter}`],
    deliver_policy: DeliverPolicy.LastPerSubject,
  });
  const info = await consumer.info(true);
  let isSynced = info.num_pending === 0;
  let markSynced: () => void = () => {};
  const synced = new Promise<void>((r) => (markSynced = r));
  if (isSynced) markSynced();
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      const op = m.headers?.get('KV-Operation');
      const deleted = op === 'DEL' || op === 'PURGE';
      onEntry(
        m.subject.slice(prefix.length),
        deleted ? undefined : decoder.decode(m.data),
        m.seq,
        !isSynced,
      );
      if (!isSynced && m.info.pending === 0) {
        isSynced = true;
        markSynced();
      }
    }
  })();
  return {
    synced,
    get isSynced() {
      return isSynced;
    },
    stop: async () => {
      await messages.close();
      await done;
    },
  };
}
