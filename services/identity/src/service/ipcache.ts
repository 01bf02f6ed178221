// The ipcache as a KV view: one key per prefix, its value the effective entry at the top level
// (what the datapath mirrors into its LPM map) plus every owner's claim, so that when the
// strongest claim goes the next one shows through. Each write is a read-modify-write with
// compare-and-set on the key, so any replica (or any writer following docs/wire.md) may write.
import {
  CiliateError,
  IpcacheRecordSchema,
  type IpcacheClaim,
  type IpcacheRecord,
  type IpcacheReply,
  RESERVED_IDENTITIES,
} from '@ciliate/contracts';
import { formatPrefix } from '@ciliate/netaddr';
import { isCasConflict } from '@ciliate/runtime';
import type { KV } from '@nats-io/kv';

import {
  IdentityError,
  parsePrefix,
  Ipcache,
  ipcacheKey,
  type IpcacheEntry,
} from '@ciliate/identity-core';
import { toWireError } from './errors.js';

const encoder = new TextEncoder();
const MAX_ATTEMPTS = 32;

/** Owner key of the reserved world entries the service writes itself. */
export const WORLD_OWNER = 'reserved/world';

function claimOf(e: IpcacheEntry): IpcacheClaim {
  return {
    prefix: e.prefix,
    identity: e.identity,
    ...(e.hostIP === undefined ? {} : { hostIP: e.hostIP }),
    source: e.source,
    ownerKey: e.ownerKey,
    ...(e.encryptKey === undefined ? {} : { encryptKey: e.encryptKey }),
  };
}

export interface IpcacheWriterOptions {
  /** Owners that may claim one prefix (see Ipcache's maxClaimsPerPrefix); none: no cap. */
  readonly maxClaimsPerPrefix?: number;
  readonly onWrite?: (op: 'upsert' | 'delete') => void;
  /** A claim refused at the cap on owners per prefix. */
  readonly onLimited?: () => void;
}

export class IpcacheWriter {
  constructor(
    private readonly kv: KV,
    private readonly options: IpcacheWriterOptions = {},
  ) {}

  upsert(claim: IpcacheClaim): Promise<IpcacheReply> {
    return this.#modify(claim.prefix, (cache) => cache.upsert(claim));
  }

  delete(prefix: string, ownerKey: string): Promise<IpcacheReply> {
    return this.#modify(prefix, (cache, canonical) => cache.delete(canonical, ownerKey));
  }

  /** The reserved world entries: 0.0.0.0/0 and ::/0 (world-ipv4/-ipv6 in dual stack). */
  async ensureWorld(dualStack: boolean): Promise<void> {
    await this.upsert({
      prefix: '0.0.0.0/0',
      identity: dualStack ? RESERVED_IDENTITIES['world-ipv4'] : RESERVED_IDENTITIES.world,
      source: 'generated',
      ownerKey: WORLD_OWNER,
    });
    await this.upsert({
      prefix: '::/0',
      identity: dualStack ? RESERVED_IDENTITIES['world-ipv6'] : RESERVED_IDENTITIES.world,
      source: 'generated',
      ownerKey: WORLD_OWNER,
    });
  }

  async #modify(
    prefixText: string,
    change: (cache: Ipcache, canonical: string) => unknown,
  ): Promise<IpcacheReply> {
    let canonical: string;
    let key: string;
    try {
      canonical = formatPrefix(parsePrefix(prefixText, 'prefix'));
      key = ipcacheKey(canonical);
    } catch (err) {
      throw toWireError(err);
    }
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const e = await this.kv.get(key);
      let current: IpcacheRecord | undefined;
      if (e !== null && e.operation === 'PUT') {
        const parsed = IpcacheRecordSchema.safeParse(e.json());
        // An unreadable record is replaced rather than blocking the prefix for ever.
        current = parsed.success ? parsed.data : undefined;
      }
      let cache: Ipcache;
      try {
        cache = Ipcache.restore(
          { v: 1, claims: current?.claims ?? [] },
          this.options.maxClaimsPerPrefix === undefined
            ? {}
            : { maxClaimsPerPrefix: this.options.maxClaimsPerPrefix },
        );
      } catch (err) {
        throw toWireError(err);
      }
      try {
        change(cache, canonical);
      } catch (err) {
        if (err instanceof IdentityError && err.code === 'LIMIT_REACHED') {
          this.options.onLimited?.();
        }
        // The core names the claim `entry`; on the wire its fields are the request's own.
        throw toWireError(err, 'entry');
      }
      const claims = cache.snapshot().claims.map(claimOf);
      const effective = cache.get(canonical);
      const before = current === undefined ? undefined : JSON.stringify(current.claims);
      const beforeEffective = current === undefined ? null : JSON.stringify(claimOf(current));
      const reply = (changed: boolean): IpcacheReply => ({
        prefix: canonical,
        effective: effective === undefined ? null : claimOf(effective),
        changed,
      });
      const changed =
        (effective === undefined ? null : JSON.stringify(claimOf(effective))) !== beforeEffective;
      if (before === JSON.stringify(claims)) return reply(false);
      try {
        if (effective === undefined) {
          if (e !== null && e.operation === 'PUT') {
            await this.kv.delete(key, { previousSeq: e.revision });
          }
          this.options.onWrite?.('delete');
        } else {
          const record: IpcacheRecord = { v: 1, ...claimOf(effective), claims };
          const data = encoder.encode(JSON.stringify(record));
          if (e === null) await this.kv.create(key, data);
          else await this.kv.update(key, data, e.revision);
          this.options.onWrite?.('upsert');
        }
        return reply(changed);
      } catch (err) {
        if (isCasConflict(err)) continue;
        throw toWireError(err);
      }
    }
    throw new CiliateError(
      'conflict',
      `ipcache entry ${canonical} changed under ${MAX_ATTEMPTS} attempts in a row; retry`,
    );
  }
}
