// Field errors in the shape kube-apiserver reports them (k8s.io/apimachinery field.Error), so a
// user who knows kubectl's messages reads ours without learning a new vocabulary.
//
// One issue renders as one line:
//   spec.blocks[0].cidr: Invalid value: "10.0.0.0/33": prefix length must be 0-32
//   spec.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", ...
//   metadata.name: Required value: name is required
//   unknown field "spec.foo"                     (kubectl's strict decoding error)

export type FieldErrorType =
  | 'Required value'
  | 'Invalid value'
  | 'Unsupported value'
  | 'Forbidden'
  | 'Duplicate value'
  | 'Too long'
  | 'Too many'
  | 'Unknown field';

export interface FieldIssue {
  /** Field path in kubectl form: `spec.ingress[0].toPorts[1].ports[0].port`, map keys as `[key]`. */
  readonly path: string;
  readonly type: FieldErrorType;
  /** The offending value (absent for Required value and Unknown field). */
  readonly value?: unknown;
  /** Why the value is wrong, or what is required. */
  readonly detail?: string;
  /** For Unsupported value: the accepted values. */
  readonly supported?: readonly string[];
}

const MAX_VALUE_CHARS = 200;

/** Renders a bad value the way apimachinery does: strings quoted, scalars bare, compound values by type. */
export function formatBadValue(value: unknown): string {
  if (typeof value === 'string') {
    const s = value.length > MAX_VALUE_CHARS ? `${value.slice(0, MAX_VALUE_CHARS)}...` : value;
    return JSON.stringify(s);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  if (value === null) return 'null';
  if (value === undefined) return '"undefined"';
  if (Array.isArray(value)) return '"array"';
  return '"object"';
}

export function formatFieldIssue(issue: FieldIssue): string {
  const { path, type, detail } = issue;
  const at = path === '' ? '<root>' : path;
  switch (type) {
    case 'Unknown field':
      return `unknown field "${at}"`;
    case 'Required value':
      return detail ? `${at}: Required value: ${detail}` : `${at}: Required value`;
    case 'Unsupported value': {
      const supported = (issue.supported ?? []).map((s) => JSON.stringify(s)).join(', ');
      return `${at}: Unsupported value: ${formatBadValue(issue.value)}: supported values: ${supported}`;
    }
    case 'Forbidden':
      return `${at}: Forbidden: ${detail ?? 'not allowed'}`;
    case 'Duplicate value':
      return `${at}: Duplicate value: ${formatBadValue(issue.value)}`;
    case 'Too long':
      return `${at}: Too long: ${detail ?? 'value is too long'}`;
    case 'Too many':
      return `${at}: Too many: ${formatBadValue(issue.value)}: ${detail ?? 'too many items'}`;
    case 'Invalid value':
      return detail
        ? `${at}: Invalid value: ${formatBadValue(issue.value)}: ${detail}`
        : `${at}: Invalid value: ${formatBadValue(issue.value)}`;
  }
}

/** Appends a path segment: identifiers as `.name`, indexes as `[i]`, other map keys as `[key]`. */
export function joinPath(base: string, segment: string | number): string {
  if (typeof segment === 'number') return `${base}[${segment}]`;
  if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(segment))
    return base === '' ? segment : `${base}.${segment}`;
  return `${base}[${segment}]`;
}

export function pathOf(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) out = joinPath(out, s);
  return out;
}

/** Stable codes for everything the manifest reader refuses. */
export const ManifestErrorCode = {
  /** YAML or JSON that does not parse. */
  syntax: 'MANIFEST_SYNTAX',
  /** A document that is not a mapping (a list, a scalar). */
  notAnObject: 'MANIFEST_NOT_AN_OBJECT',
  /** apiVersion/kind missing or malformed. */
  missingType: 'MANIFEST_MISSING_TYPE',
  /** A kind Ciliate does not handle (known to Kubernetes/Cilium or not at all). */
  kindNotSupported: 'RESOURCE_KIND_NOT_SUPPORTED',
  /** A supported kind under an apiVersion that is not served for it. */
  versionNotServed: 'RESOURCE_VERSION_NOT_SERVED',
  /** An object that fails its schema or semantic validation. */
  invalid: 'RESOURCE_INVALID',
} as const;
export type ManifestErrorCode = (typeof ManifestErrorCode)[keyof typeof ManifestErrorCode];

/** Everything wrong with one document (or one item of a `kind: List`). */
export interface ManifestProblem {
  readonly code: ManifestErrorCode;
  /** File name, `-`/STDIN, or whatever the caller passed as the source. */
  readonly source: string;
  /** 1-based position of the document in the stream (empty documents are not counted). */
  readonly document: number;
  /** 1-based line where the document (or the syntax error) starts, when known. */
  readonly line?: number;
  /** Index in `items` when the document is a `kind: List`. */
  readonly item?: number;
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name?: string;
  /** Field issues; for syntax and unsupported-kind problems a single synthetic issue or none. */
  readonly issues: readonly FieldIssue[];
  /** Fully rendered, one line per issue (kubectl style). */
  readonly message: string;
}

/** Thrown by the throwing entry points; carries every problem, not just the first. */
export class ManifestError extends Error {
  readonly code: ManifestErrorCode;
  readonly problems: readonly ManifestProblem[];

  constructor(problems: readonly ManifestProblem[], options?: { cause?: unknown }) {
    super(problems.map((p) => p.message).join('\n'), options);
    this.name = 'ManifestError';
    this.problems = problems;
    this.code = problems[0]?.code ?? ManifestErrorCode.invalid;
  }
}
