// CNI errors as the spec defines them: a numeric code, a message and details, printed as JSON on
// stdout with a non-zero exit. Codes 0-99 are the spec's; ours start at 100.

export const CniErrorCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENVIRONMENT: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_NETWORK_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** STATUS: the plugin cannot service ADD requests. */
  NOT_READY: 50,
  /** STATUS: and existing containers may have limited connectivity. */
  LIMITED_CONNECTIVITY: 51,
  /** Ours: wiring the endpoint failed (netlink, BPF maps, program attach). */
  DATAPATH_FAILURE: 100,
  /** Ours: the node has no address left for the pod. */
  ADDRESS_EXHAUSTED: 101,
  /** Ours: ADD for an attachment (container ID, ifname) that already exists. */
  ALREADY_EXISTS: 102,
  /** Ours: CHECK found the endpoint different from what ADD made. */
  CHECK_FAILED: 103,
  /** Ours: anything unexpected inside the agent. */
  INTERNAL: 999,
} as const;

export type CniErrorCodeValue = (typeof CniErrorCode)[keyof typeof CniErrorCode];

/** The error object of the spec's "Error" section. */
export interface CniErrorJson {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toJson(cniVersion: string): CniErrorJson {
    const out: CniErrorJson = { cniVersion, code: this.code, msg: this.message };
    if (this.details) out.details = this.details;
    return out;
  }
}

export function isCniError(err: unknown): err is CniError {
  return err instanceof CniError;
}

/** Any thrown value as a CniError (unknown failures become INTERNAL with the cause's text). */
export function asCniError(err: unknown): CniError {
  if (err instanceof CniError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new CniError(CniErrorCode.INTERNAL, msg, undefined, { cause: err });
}

export function invalidEnv(variable: string, value: string | undefined, reason: string): CniError {
  const shown = value === undefined ? '' : `: Invalid value: ${JSON.stringify(value)}`;
  return new CniError(CniErrorCode.INVALID_ENVIRONMENT, `${variable}${shown}: ${reason}`);
}

export function invalidConfig(path: string, value: unknown, reason: string): CniError {
  const shown = value === undefined ? '' : `: Invalid value: ${JSON.stringify(value)}`;
  return new CniError(CniErrorCode.INVALID_NETWORK_CONFIG, `${path}${shown}: ${reason}`);
}
