// JetStream KV bucket names and the keys inside them.
import { PROJECT } from './version.js';
import { natsName } from './tokens.js';

export const buckets = {
  /** Leases for singleton work (leader election) with fencing tokens. */
  leases(): string {
    return `${PROJECT}-leases`;
  },
} as const;

/** KV keys allow letters, digits and "-_/=."; a lease name is one such key. */
const KEY = /^[-/=.\w]+$/;

export function leaseKey(name: string): string {
  if (!KEY.test(name) || name.startsWith('.') || name.endsWith('.')) {
    return natsName('lease', name); // throws with the field named
  }
  return name;
}
