// Every failure of this package is a BpfError with a stable `code`: the errno name for a failed
// syscall or libbpf call (EPERM, EACCES, ENOENT, ...), or one of the ERR_* codes below for
// misuse. A program the verifier rejects carries the verifier's log, so the reason is never
// lost in stderr.

export const ErrorCodes = {
  /** A bad argument reached the addon (wrong type, size, unknown name). */
  INVALID_ARG: 'ERR_INVALID_ARG',
  /** A value could not be encoded for a map or constant; the message names the field. */
  INVALID_VALUE: 'ERR_INVALID_VALUE',
  /** The native addon is not built or cannot be loaded. */
  ADDON_MISSING: 'ERR_ADDON_MISSING',
  /** The object, map or reader was closed. */
  CLOSED: 'ERR_CLOSED',
  /** The map or kernel does not support the operation and there is no fallback. */
  NOT_SUPPORTED: 'ERR_NOT_SUPPORTED',
} as const;

export interface BpfErrorDetails {
  code: string;
  errno?: number;
  /** The libbpf function or syscall that failed. */
  op?: string;
  /** The kernel verifier's log of a rejected program. */
  verifierLog?: string;
  /** Everything libbpf printed during the failed operation. */
  libbpfLog?: string;
  cause?: unknown;
}

export class BpfError extends Error {
  override readonly name = 'BpfError';
  readonly code: string;
  readonly errno: number | undefined;
  readonly op: string | undefined;
  readonly verifierLog: string | undefined;
  readonly libbpfLog: string | undefined;
  /** The program the verifier rejected, when libbpf named it. */
  readonly program: string | undefined;

  constructor(message: string, details: BpfErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = details.code;
    this.errno = details.errno;
    this.op = details.op;
    this.verifierLog = details.verifierLog;
    this.libbpfLog = details.libbpfLog;
    this.program = details.libbpfLog
      ? /prog '([^']+)': BPF program load failed/.exec(details.libbpfLog)?.[1]
      : undefined;
  }
}

export function isBpfError(err: unknown): err is BpfError {
  return err instanceof BpfError;
}

/** A kubectl-style validation error: `<path>: Invalid value: <value>: <reason>`. */
export function invalidValue(path: string, value: unknown, reason: string): BpfError {
  let shown: string;
  try {
    shown = typeof value === 'bigint' ? value.toString() : (JSON.stringify(value) ?? String(value));
  } catch {
    shown = String(value);
  }
  return new BpfError(`${path}: Invalid value: ${shown}: ${reason}`, {
    code: ErrorCodes.INVALID_VALUE,
  });
}
