// The core's error codes as wire codes: callers switch on `exhausted`, `bad_request`,
// `not_found`, `conflict`, never on the core's internal names.
import { CiliateError, type ErrorCode } from '@ciliate/contracts';

import { IdentityError, type IdentityErrorCode } from '@ciliate/identity-core';
import { storeFailureKind } from '@ciliate/runtime';

import { PublishTimeoutError, PublishUnavailableError } from './publisher.js';

const WIRE: Record<IdentityErrorCode, ErrorCode> = {
  INVALID_LABEL: 'bad_request',
  INVALID_LABEL_SET: 'bad_request',
  INVALID_LABEL_FILTER: 'bad_request',
  INVALID_CLUSTER_CONFIG: 'bad_request',
  INVALID_IDENTITY: 'bad_request',
  INVALID_PREFIX: 'bad_request',
  INVALID_ARGUMENT: 'bad_request',
  IDENTITY_EXHAUSTED: 'exhausted',
  ALLOCATION_CONFLICT: 'conflict',
  ALLOCATION_TIMEOUT: 'timeout',
  HASH_COLLISION: 'conflict',
  LIMIT_REACHED: 'exhausted',
  // A malformed record in the bucket is the service's problem, not the caller's.
  INVALID_RECORD: 'internal',
};

export function wireCodeOf(code: IdentityErrorCode): ErrorCode {
  return WIRE[code];
}

/**
 * Any failure as the error a caller gets. `fieldPrefix` is dropped from core field paths that
 * name an internal wrapper (`pod.namespace` -> `namespace`).
 */
export function toWireError(err: unknown, fieldPrefix?: string): CiliateError {
  if (err instanceof CiliateError) return err;
  if (err instanceof IdentityError) {
    let field = err.field;
    let message = err.message;
    if (fieldPrefix !== undefined && field?.startsWith(`${fieldPrefix}.`)) {
      field = field.slice(fieldPrefix.length + 1);
      message = message.startsWith(`${fieldPrefix}.`)
        ? message.slice(fieldPrefix.length + 1)
        : message;
    }
    return new CiliateError(wireCodeOf(err.code), message, {
      ...(field === undefined ? {} : { field }),
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  // The store (JetStream) did not answer in time or is away: the caller may retry. Told by
  // error class and JetStream code (the lean publisher's refusals carry the code too).
  const kind =
    err instanceof PublishUnavailableError
      ? 'unavailable'
      : err instanceof PublishTimeoutError
        ? 'timeout'
        : storeFailureKind(err);
  if (kind !== undefined) {
    return new CiliateError(kind, `identity store: ${message}`, { cause: err });
  }
  return new CiliateError('internal', message, { cause: err });
}
