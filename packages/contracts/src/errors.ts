// Error codes shared by every service and client. A code is stable forever; the numeric status
// goes into the micro service error header (Nats-Service-Error-Code), the code and message into
// the body, so both `nats req` users and typed clients can tell failures apart.

export const errorCodes = {
  bad_request: 400,
  /** The caller's credentials or node may not do this (another node's subject, say). */
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  exhausted: 507,
  not_supported: 501,
  unavailable: 503,
  timeout: 504,
  internal: 500,
  /** A request (or one of its parts) is over a size limit; the error names it and the limit. */
  too_large: 413,
  /** The service has as many requests in flight as it may take; retry later. */
  busy: 429,
} as const;

export type ErrorCode = keyof typeof errorCodes;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(errorCodes, value);
}

export interface WireError {
  code: ErrorCode;
  message: string;
  /** Path of the offending field for bad input, e.g. `spec.blocks[0].cidr`. */
  field?: string;
}

export class CiliateError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;

  constructor(code: ErrorCode, message: string, opts: { field?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'CiliateError';
    this.code = code;
    this.field = opts.field;
  }

  get status(): number {
    return errorCodes[this.code];
  }

  toWire(): WireError {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field };
  }

  static fromWire(w: WireError): CiliateError {
    return new CiliateError(w.code, w.message, w.field === undefined ? {} : { field: w.field });
  }
}

/** Any thrown value as a CiliateError; unknown failures become `internal`. */
export function asCiliateError(err: unknown): CiliateError {
  if (err instanceof CiliateError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new CiliateError('internal', message, { cause: err });
}
