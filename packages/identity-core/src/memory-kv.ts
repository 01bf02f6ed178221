// An in-memory stand-in for a JetStream KV bucket with the compare-and-set semantics the
// machines rely on, for unit tests, simulations and benchmarks of the pure core. It is a fake
// for tests, not a store: nothing persists.
import { IdentityError } from './errors.js';
import type { KvOp, KvResult } from './allocation.js';

export type KvListener = (key: string, value: string | undefined, revision: number) => void;

/** NATS subject matching: `*` is one token, a trailing `>` is one or more. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (f[i] !== '*' && f[i] !== s[i]) return false;
  }
  return f.length === s.length;
}

export class MemoryKv {
  readonly #data = new Map<string, { value: string; revision: number }>();
  readonly #listeners: KvListener[] = [];
  #revision = 0;
  /** Operations executed, by kind, for assertions and benchmarks. */
  readonly counts: Record<KvOp['op'], number> = {
    get: 0,
    create: 0,
    update: 0,
    put: 0,
    delete: 0,
    keys: 0,
    wait: 0,
    batch: 0,
  };
  /** When set, `batch` operations are refused (a store at its batch limits). */
  refuseBatches = false;

  get revision(): number {
    return this.#revision;
  }

  get size(): number {
    return this.#data.size;
  }

  /** Called after every change, like a KV watch (value undefined = deleted). */
  onChange(listener: KvListener): void {
    this.#listeners.push(listener);
  }

  get(key: string): { value: string; revision: number } | undefined {
    return this.#data.get(key);
  }

  keys(filter = '>'): string[] {
    return [...this.#data.keys()].filter((k) => subjectMatches(filter, k)).sort();
  }

  entries(): [string, { value: string; revision: number }][] {
    return [...this.#data.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  #write(key: string, value: string | undefined): KvResult {
    const revision = ++this.#revision;
    if (value === undefined) this.#data.delete(key);
    else this.#data.set(key, { value, revision });
    for (const l of this.#listeners) l(key, value, revision);
    return { kind: 'written', revision };
  }

  /** Executes one operation of a machine. */
  execute(op: KvOp): KvResult {
    this.counts[op.op]++;
    switch (op.op) {
      case 'get': {
        const e = this.#data.get(op.key);
        return e === undefined ? { kind: 'missing' } : { kind: 'value', ...e };
      }
      case 'create':
        return this.#data.has(op.key) ? { kind: 'conflict' } : this.#write(op.key, op.value);
      case 'update': {
        const e = this.#data.get(op.key);
        if (e === undefined || e.revision !== op.revision) return { kind: 'conflict' };
        return this.#write(op.key, op.value);
      }
      case 'put':
        return this.#write(op.key, op.value);
      case 'delete': {
        const e = this.#data.get(op.key);
        if (op.revision !== undefined && (e === undefined || e.revision !== op.revision)) {
          return { kind: 'conflict' };
        }
        return this.#write(op.key, undefined);
      }
      case 'batch': {
        if (this.refuseBatches) return { kind: 'refused' };
        for (const w of op.writes) {
          if (w.op === 'create' && this.#data.has(w.key)) return { kind: 'conflict' };
        }
        let last: KvResult = { kind: 'conflict' };
        for (const w of op.writes) last = this.#write(w.key, w.value);
        return last;
      }
      case 'keys':
        return { kind: 'keys', keys: this.keys(op.filter) };
      case 'wait':
        return { kind: 'waited' };
    }
  }
}

/**
 * Runs a machine to its end against a MemoryKv: `start` gives the first step, `next` feeds a
 * result. Throws if it does not end within `maxOps` operations.
 */
export function runMachine<S extends { phase: string }>(
  kv: MemoryKv,
  first: { state: S; op?: KvOp },
  next: (state: S, result: KvResult) => { state: S; op?: KvOp },
  maxOps = 10_000,
): S {
  let step = first;
  for (let i = 0; step.op !== undefined; i++) {
    if (i >= maxOps) {
      throw new IdentityError(
        'INVALID_ARGUMENT',
        `machine did not end within ${maxOps} operations`,
      );
    }
    step = next(step.state, kv.execute(step.op));
  }
  return step.state;
}
