// Typed errors of the identity core. Codes are stable: callers, metrics and the CLI switch on
// them, so a code is never renamed, only added.

import { CiliateError } from '@ciliate/contracts';

export const IDENTITY_ERROR_CODES = [
  'INVALID_LABEL',
  'INVALID_LABEL_SET',
  'INVALID_LABEL_FILTER',
  'INVALID_CLUSTER_CONFIG',
  'INVALID_IDENTITY',
  'INVALID_PREFIX',
  'INVALID_RECORD',
  'INVALID_ARGUMENT',
  'IDENTITY_EXHAUSTED',
  'ALLOCATION_CONFLICT',
  'ALLOCATION_TIMEOUT',
  'HASH_COLLISION',
  /** A cap on what one client may make the service keep (claims per prefix, holds per node). */
  'LIMIT_REACHED',
] as const;

export type IdentityErrorCode = (typeof IDENTITY_ERROR_CODES)[number];

export class IdentityError extends Error {
  override readonly name = 'IdentityError';
  readonly code: IdentityErrorCode;
  /** Dotted path of the offending input field, when the error is about one. */
  readonly field: string | undefined;

  constructor(
    code: IdentityErrorCode,
    message: string,
    options: { field?: string; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.field = options.field;
  }

  /** Plain form for logs and NATS service-error headers. */
  toJSON(): { code: IdentityErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }
}

/** kubectl-style message: `field: Invalid value: "x": reason`. */
export function invalid(
  code: IdentityErrorCode,
  field: string,
  value: unknown,
  reason: string,
): IdentityError {
  return new IdentityError(code, `${field}: Invalid value: ${show(value)}: ${reason}`, { field });
}

/** kubectl-style message for a missing field: `field: Required value: reason`. */
export function required(code: IdentityErrorCode, field: string, reason: string): IdentityError {
  return new IdentityError(code, `${field}: Required value: ${reason}`, { field });
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }
  if (value === undefined) return 'undefined';
  try {
    const s = JSON.stringify(value);
    return s.length > 120 ? `${s.slice(0, 117)}...` : s;
  } catch {
    return Object.prototype.toString.call(value);
  }
}

/**
 * Runs `fn`, turning the vocabulary's bad-input errors (the label model of @ciliate/contracts
 * throws CiliateError `bad_request`) into identity errors with `code`, so that the core's
 * machines, record decoders and wire mapping handle one kind of error.
 */
export function asIdentityInput<T>(code: IdentityErrorCode, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof CiliateError && err.code === 'bad_request') {
      throw new IdentityError(code, err.message, {
        ...(err.field === undefined ? {} : { field: err.field }),
        cause: err,
      });
    }
    throw err;
  }
}
