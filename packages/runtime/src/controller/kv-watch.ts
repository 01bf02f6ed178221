// The one KV bucket watch: every current value under a filter (or, resumed from a revision, every
// change after it), then every change, in revision order, on an ordered consumer that resumes by
// itself after a disconnect. Deletes arrive as the tombstones KV keeps for them (value
// undefined), so a watch resumed from any revision sees every delete after it. `synced` resolves
// once everything that was there when the watch started has been delivered.
import { kvSubjectPrefix } from '@ciliate/contracts';
import { DeliverPolicy, type JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';

export interface KvWatchEvent<T> {
  key: string;
  /** The stream sequence of the message: the key's revision. */
  revision: number;
  /** The decoded value; undefined for a delete, a purge or a value that failed to decode. */
  value: T | undefined;
  /** True for entries delivered before the initial sync completed. */
  initial: boolean;
}

export interface KvWatchOptions<T> {
  /** Key filters (NATS wildcards allowed); default every key. */
  filter?: string | readonly string[];
  /** Resume: deliver every change after this revision instead of the current values. */
  fromRevision?: number;
  /** Bytes to a value; throwing (or undefined) makes the entry count as absent. */
  decode: (data: Uint8Array, key: string) => T | undefined;
  /** A value failed to decode (log and count it; the entry is delivered as absent). */
  onInvalid?: (key: string, err: unknown) => void;
}

export interface KvWatch {
  /** Resolves once every entry that existed when the watch started has been delivered. */
  readonly synced: Promise<void>;
  readonly isSynced: boolean;
  /** Revision of the last entry delivered (fromRevision - 1 before any). */
  readonly revision: number;
  stop(): Promise<void>;
}

const decoder = new TextDecoder();

/** Decodes UTF-8 text (for `decode`). */
export function decodeText(data: Uint8Array): string {
  return decoder.decode(data);
}

/** Decodes UTF-8 JSON (for `decode`). */
export function decodeJson(data: Uint8Array): unknown {
  return JSON.parse(decoder.decode(data)) as unknown;
}

export async function watchKv<T>(
  js: JetStreamClient,
  kv: KV,
  opts: KvWatchOptions<T>,
  onEvent: (ev: KvWatchEvent<T>) => void,
): Promise<KvWatch> {
  const status = await kv.status();
  const stream = status.streamInfo.config.name;
  const prefix = kvSubjectPrefix(status.bucket);
  const filters =
    opts.filter === undefined
      ? ['>']
      : typeof opts.filter === 'string'
        ? [opts.filter]
        : opts.filter;
  const resume = opts.fromRevision !== undefined && opts.fromRevision > 0;
  const only = filters.length === 1 && !/[*>]/.test(filters[0]!) ? filters[0] : undefined;
  const consumer = await js.consumers.get(stream, {
    // One exact key goes as a single filter, which the consumer's create subject then names:
    // permissions can allow watching that key and nothing else of the bucket (contracts' access).
    filter_subjects: only !== undefined ? `${prefix}${only}` : filters.map((f) => `${prefix}${f}`),
    ...(resume
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: opts.fromRevision }
      : { deliver_policy: DeliverPolicy.LastPerSubject }),
  });
  const info = await consumer.info(true);
  let isSynced = info.num_pending === 0;
  let markSynced: () => void = () => {};
  const synced = new Promise<void>((r) => (markSynced = r));
  if (isSynced) markSynced();
  let revision = (opts.fromRevision ?? 1) - 1;
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      const key = m.subject.slice(prefix.length);
      const op = m.headers?.get('KV-Operation');
      let value: T | undefined;
      if (op !== 'DEL' && op !== 'PURGE') {
        try {
          value = opts.decode(m.data, key);
        } catch (err) {
          opts.onInvalid?.(key, err);
        }
      }
      revision = m.seq;
      onEvent({ key, revision: m.seq, value, initial: !isSynced });
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
    get revision() {
      return revision;
    },
    stop: async () => {
      await messages.close();
      await done;
    },
  };
}
