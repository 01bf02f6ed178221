// The errors every controller shares: a compare-and-set that lost (told by JetStream's error code,
// never by message text) and a lease holder that has been replaced (fencing).
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  TimeoutError,
} from '@nats-io/transport-node';

/** JetStream's codes for a write whose expected last sequence did not match. */
const CAS_CODES: ReadonlySet<number> = new Set([
  JetStreamApiCodes.StreamWrongLastSequence,
  JetStreamApiCodes.StreamWrongLastSequenceUnknown,
]);

/**
 * The JetStream API error code `err` (or an error in its cause chain) carries: a
 * JetStreamApiError's `code`, or the `errCode` of an acknowledgement a lean publisher turned into
 * an error. Undefined when there is none.
 */
export function jetStreamErrorCode(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof JetStreamApiError) return e.code;
    const code = (e as { errCode?: unknown }).errCode;
    if (typeof code === 'number') return code;
    e = e.cause;
  }
  return undefined;
}

/**
 * JetStream's codes for a cluster that cannot answer right now (no meta leader, no stream
 * leader, peers missing during an election or a membership change): the caller may retry.
 */
const CLUSTER_TRANSIENT_CODES: ReadonlySet<number> = new Set([
  10004, // cluster incomplete
  10005, // no suitable peers for placement
  10006, // not in clustered mode (yet)
  10007, // not assigned to this server
  10008, // JetStream system temporarily unavailable
  10009, // cluster can not handle the request (no leader)
  10040, // peer not a member (yet)
  10118, // stream is offline
]);

/**
 * What a failed store (JetStream, KV) operation means for a caller, told by error class and
 * JetStream code, never by message text: `timeout` (no answer in time), `unavailable` (no
 * responder, connection closed or draining, a cluster between leaders), or undefined (a real
 * failure).
 */
export function storeFailureKind(err: unknown): 'timeout' | 'unavailable' | undefined {
  const code = jetStreamErrorCode(err);
  if (code !== undefined && CLUSTER_TRANSIENT_CODES.has(code)) return 'unavailable';
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; depth++) {
    if (e instanceof TimeoutError) return 'timeout';
    if (
      e instanceof NoRespondersError ||
      e instanceof ClosedConnectionError ||
      e instanceof DrainingConnectionError ||
      e instanceof ConnectionError
    ) {
      return 'unavailable';
    }
    e = e.cause;
  }
  return undefined;
}

/** Whether `err` is a compare-and-set write that lost to another writer. */
export function isCasConflict(err: unknown): boolean {
  const code = jetStreamErrorCode(err);
  return code !== undefined && CAS_CODES.has(code);
}

/**
 * A lease holder found that a newer holder exists (a stored token above its own, or its lease
 * gone): it must stop acting at once. Reconcilers stop on it instead of retrying.
 */
export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(
    readonly what: string,
    readonly mine: number | undefined,
    readonly stored?: number,
  ) {
    super(
      stored === undefined
        ? `${what}: this replica no longer holds the lease${mine === undefined ? '' : ` (token ${mine})`}`
        : `${what} was written by a newer lease holder (token ${stored} > ${mine ?? 'none'})`,
    );
  }
}
