// Subject tokens carry user data (node names, namespaces); one stray dot or wildcard would
// silently change what a subscription means, so every token is checked where it is built.

const FORBIDDEN = /[\s.*>]/;

export class InvalidTokenError extends Error {
  readonly code = 'invalid_token';
  constructor(
    readonly field: string,
    readonly value: string,
    reason: string,
  ) {
    super(`${field}: Invalid value: ${JSON.stringify(value)}: ${reason}`);
    this.name = 'InvalidTokenError';
  }
}

/** Returns `value` when it is usable as one subject token; throws naming `field` otherwise. */
export function token(field: string, value: string): string {
  if (value.length === 0) throw new InvalidTokenError(field, value, 'must not be empty');
  if (FORBIDDEN.test(value)) {
    throw new InvalidTokenError(field, value, 'must not contain whitespace, ".", "*" or ">"');
  }
  return value;
}

const NAME = /^[A-Za-z0-9_-]+$/;

/** Names of KV buckets, streams and micro services: letters, digits, "-" and "_" only. */
export function natsName(field: string, value: string): string {
  if (!NAME.test(value)) {
    throw new InvalidTokenError(field, value, 'must consist of letters, digits, "-" and "_"');
  }
  return value;
}
