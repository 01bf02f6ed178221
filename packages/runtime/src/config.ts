// One typed configuration per service, read from flags and the environment, with defaults, and
// validated before anything starts: a wrong value stops the service with a message that names
// the setting, its flag and its variable.
import { accessSync, constants } from 'node:fs';

export class ConfigError extends Error {
  readonly code = 'invalid_config';
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Setting<T> {
  readonly flag: string;
  readonly env: string;
  readonly describe: string;
  /** The value when neither flag nor variable is given; `undefined` makes the setting optional. */
  readonly default?: T | (() => T);
  readonly required?: boolean;
  /** Turns the raw text into a value or throws an Error whose message is the reason. */
  readonly parse: (raw: string) => T;
}

export type Settings = Record<string, Setting<unknown>>;

export type ConfigOf<S extends Settings> = {
  readonly [K in keyof S]: S[K] extends Setting<infer T>
    ? S[K]['required'] extends true
      ? T
      : S[K]['default'] extends undefined
        ? T | undefined
        : T
    : never;
};

interface Base {
  flag: string;
  env: string;
  describe: string;
  required?: boolean;
}

function make<T>(base: Base & { default?: T | (() => T) }, parse: (raw: string) => T): Setting<T> {
  return { ...base, parse };
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `250ms`, `5s`, `1.5m`, `2h` to milliseconds. */
export function parseDuration(raw: string): number {
  const m = DURATION.exec(raw.trim());
  if (!m) throw new Error(`"${raw}" is not a duration (examples: 500ms, 5s, 2m, 1h)`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2]!]!);
}

export const setting = {
  string(
    o: Base & { default?: string | (() => string); pattern?: RegExp; hint?: string },
  ): Setting<string> {
    return make(o, (raw) => {
      if (o.pattern && !o.pattern.test(raw)) {
        throw new Error(`"${raw}" is not valid${o.hint ? ` (${o.hint})` : ''}`);
      }
      return raw;
    });
  },
  int(o: Base & { default?: number; min?: number; max?: number }): Setting<number> {
    return make(o, (raw) => {
      if (!/^-?\d+$/.test(raw.trim())) throw new Error(`"${raw}" is not an integer`);
      const n = Number(raw);
      if (o.min !== undefined && n < o.min) throw new Error(`${n} is below the minimum ${o.min}`);
      if (o.max !== undefined && n > o.max) throw new Error(`${n} is above the maximum ${o.max}`);
      return n;
    });
  },
  bool(o: Base & { default?: boolean }): Setting<boolean> {
    return make(o, (raw) => {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw new Error(`"${raw}" is not a boolean (true or false)`);
    });
  },
  duration(o: Base & { default?: number; minMs?: number }): Setting<number> {
    return make(o, (raw) => {
      const ms = parseDuration(raw);
      if (o.minMs !== undefined && ms < o.minMs)
        throw new Error(`${raw} is shorter than ${o.minMs}ms`);
      return ms;
    });
  },
  oneOf<const V extends string>(o: Base & { values: readonly V[]; default?: V }): Setting<V> {
    return make(o, (raw) => {
      if (!(o.values as readonly string[]).includes(raw)) {
        throw new Error(`"${raw}" is not one of ${o.values.join(', ')}`);
      }
      return raw as V;
    });
  },
  /** host:port; port 0 asks the kernel for a free one; the empty string turns the listener off. */
  listenAddress(o: Base & { default?: string }): Setting<string> {
    return make(o, (raw) => {
      if (raw === '') return raw;
      const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d+)$/.exec(raw);
      if (!m) throw new Error(`"${raw}" is not host:port`);
      const port = Number(m[2]);
      if (port > 65535) throw new Error(`port ${port} is above 65535`);
      return raw;
    });
  },
  /** A comma-separated list of nats:// or tls:// URLs. */
  natsUrls(o: Base & { default?: string | (() => string) }): Setting<string> {
    return make(o, (raw) => {
      for (const part of raw.split(',')) {
        let u: URL;
        try {
          u = new URL(part.trim());
        } catch {
          throw new Error(`"${part}" is not a URL (example: nats://127.0.0.1:4222)`);
        }
        if (!['nats:', 'tls:', 'ws:', 'wss:'].includes(u.protocol)) {
          throw new Error(`"${part}" must use nats://, tls://, ws:// or wss://`);
        }
      }
      return raw;
    });
  },
  /** A path to a file that must exist and be readable at start. */
  readableFile(o: Base): Setting<string> {
    return make(o, (raw) => {
      try {
        accessSync(raw, constants.R_OK);
      } catch {
        throw new Error(`file "${raw}" does not exist or is not readable`);
      }
      return raw;
    });
  },
};

function nameOf(key: string, s: Setting<unknown>): string {
  return `--${s.flag} (${s.env}) [${key}]`;
}

export interface ConfigSource {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

/** Splits `--flag value` and `--flag=value` pairs; a bare `--flag` means "true". */
function parseFlags(argv: readonly string[], known: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new ConfigError(arg, `unexpected argument "${arg}"`);
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
    const key = known.get(flag);
    if (key === undefined) {
      throw new ConfigError(flag, `unknown flag --${flag} (see --help for the settings)`);
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) value = argv[++i]!;
    else value = 'true';
    out.set(key, value);
  }
  return out;
}

/** Reads every setting (flag over variable over default) or throws a ConfigError naming it. */
export function loadConfig<S extends Settings>(settings: S, source: ConfigSource): ConfigOf<S> {
  const known = new Map(Object.entries(settings).map(([k, s]) => [s.flag, k]));
  const flags = parseFlags(source.argv, known);
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings)) {
    const fromFlag = flags.get(key);
    const fromEnv = source.env[s.env];
    const raw = fromFlag ?? (fromEnv === '' ? undefined : fromEnv);
    if (raw === undefined) {
      if (s.required && s.default === undefined) {
        throw new ConfigError(key, `missing setting ${nameOf(key, s)}: ${s.describe}`);
      }
      out[key] = typeof s.default === 'function' ? (s.default as () => unknown)() : s.default;
      continue;
    }
    try {
      out[key] = s.parse(raw);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const from = fromFlag !== undefined ? `--${s.flag}` : s.env;
      throw new ConfigError(key, `invalid setting ${nameOf(key, s)} from ${from}: ${reason}`);
    }
  }
  return out as ConfigOf<S>;
}

/** The settings as a help text, one block per setting. */
export function describeSettings(settings: Settings): string {
  return Object.values(settings)
    .map((s) => {
      const d = typeof s.default === 'function' ? '(computed)' : s.default;
      const def = d === undefined || d === '' ? '' : ` (default ${JSON.stringify(d)})`;
      return `  --${s.flag}, ${s.env}${def}\n      ${s.describe}`;
    })
    .join('\n');
}
