// Every failure of the allocation core is an IpamError with a stable `code`, so the service can
// map it to a micro-service error header and a CNI plugin can map it to a CNI error without
// parsing messages. Messages about bad input follow kubectl's shape:
//   spec.blocks[0].cidr: Invalid value: "10.0.0.0/33": prefix length must be 0-32

export const IPAM_ERROR_CODES = [
  /** An IP address that does not parse. */
  'INVALID_IP',
  /** A CIDR that does not parse, or has host bits set where a network is required. */
  'INVALID_CIDR',
  /** Any other malformed argument (owner key, setting value, selector, ...). */
  'INVALID_ARGUMENT',
  /** Stored state that does not have the expected shape or contradicts itself. */
  'INVALID_STATE',
  /** The cluster pool has no free per-node CIDR left for a family. */
  'POOL_EXHAUSTED',
  /** A node's pod CIDR has no free address left. */
  'RANGE_FULL',
  /** A specific address was requested but another owner holds it. */
  'IP_IN_USE',
  /** A specific address was requested but it is never handed out (network, broadcast). */
  'IP_RESERVED',
  /** A specific address was requested outside the range it must come from. */
  'IP_OUT_OF_RANGE',
  /** The owner already holds a different address than the one requested. */
  'OWNER_CONFLICT',
  /** A CIDR overlaps one already held by another node (or another block of the input). */
  'CIDR_CONFLICT',
  /** A CIDR to be restored lies outside every configured cluster CIDR. */
  'CIDR_OUTSIDE_POOL',
  /** An address family was asked for that is not enabled. */
  'FAMILY_DISABLED',
  /** An address of one family was given where the other family is needed. */
  'FAMILY_MISMATCH',
  /** The node has no pod CIDR for the family (yet). */
  'NO_CIDR',
] as const;

export type IpamErrorCode = (typeof IPAM_ERROR_CODES)[number];

export interface IpamErrorOptions {
  /** Field path of the bad value, kubectl style (`spec.blocks[0].cidr`). */
  readonly path?: string;
  /** The offending value as given. */
  readonly value?: unknown;
  /** Structured facts for callers (family, node, holder, ...), JSON-safe. */
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
  readonly cause?: unknown;
}

export class IpamError extends Error {
  override readonly name = 'IpamError';
  readonly code: IpamErrorCode;
  readonly path: string | undefined;
  readonly value: unknown;
  readonly details: Readonly<Record<string, string | number | boolean | null>>;

  constructor(code: IpamErrorCode, message: string, options: IpamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    this.value = options.value;
    this.details = options.details ?? {};
  }

  /** A JSON-safe view, for error headers and status messages. */
  toJSON(): { code: IpamErrorCode; message: string; path?: string; details: object } {
    return {
      code: this.code,
      message: this.message,
      ...(this.path === undefined ? {} : { path: this.path }),
      details: this.details,
    };
  }
}

/** Renders a value the way kubectl does in "Invalid value" messages. */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

/** `path: Invalid value: "x": reason`, as an IpamError with the given code. */
export function invalidValue(
  code: IpamErrorCode,
  path: string,
  value: unknown,
  reason: string,
  details?: IpamErrorOptions['details'],
): IpamError {
  return new IpamError(code, `${path}: Invalid value: ${renderValue(value)}: ${reason}`, {
    path,
    value,
    ...(details === undefined ? {} : { details }),
  });
}

/** `path: Required value: reason`. */
export function requiredValue(path: string, reason: string): IpamError {
  return new IpamError('INVALID_ARGUMENT', `${path}: Required value: ${reason}`, { path });
}

export function isIpamError(err: unknown, code?: IpamErrorCode): err is IpamError {
  return err instanceof IpamError && (code === undefined || err.code === code);
}
