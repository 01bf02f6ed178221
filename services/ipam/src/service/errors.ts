// The core's IpamError codes as wire error codes, so a CNI plugin can turn them into CNI errors
// without reading messages.
import { CiliateError, type ErrorCode } from '@ciliate/contracts';

import { isIpamError, type IpamErrorCode } from '@ciliate/ipam-core';

const WIRE_CODES: Record<IpamErrorCode, ErrorCode> = {
  INVALID_IP: 'bad_request',
  INVALID_CIDR: 'bad_request',
  INVALID_ARGUMENT: 'bad_request',
  INVALID_STATE: 'internal',
  POOL_EXHAUSTED: 'exhausted',
  RANGE_FULL: 'exhausted',
  IP_IN_USE: 'conflict',
  IP_RESERVED: 'bad_request',
  IP_OUT_OF_RANGE: 'bad_request',
  OWNER_CONFLICT: 'conflict',
  CIDR_CONFLICT: 'conflict',
  CIDR_OUTSIDE_POOL: 'bad_request',
  FAMILY_DISABLED: 'bad_request',
  FAMILY_MISMATCH: 'bad_request',
  NO_CIDR: 'not_found',
};

/** Any failure as the error the endpoint answers with; the field path is kept for bad input. */
export function toWireError(err: unknown, fieldPrefix = ''): unknown {
  if (!isIpamError(err)) return err;
  const code = WIRE_CODES[err.code];
  const field = err.path === undefined ? undefined : `${fieldPrefix}${err.path}`;
  return new CiliateError(code, `${err.code}: ${err.message}`, {
    ...(field !== undefined && code === 'bad_request' ? { field } : {}),
    cause: err,
  });
}
