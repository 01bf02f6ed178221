// Where the CLI finds NATS: --nats, then CILIATE_NATS_URL, then the current context (written by
// `ciliate lab up`), then the local default.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { CiliateError, principalName } from '@ciliate/contracts';

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** A service instance the context's owner runs (`ciliate status` reports it when missing). */
export interface ExpectedInstance {
  component: string;
  node: string;
}

export interface CliContext {
  name: string;
  natsUrl: string;
  creds?: string;
  /** The CLI's own credentials: an nkey seed file and TLS files (the lab writes them). */
  nkey?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  /** The principal the credentials belong to (viewer or admin): its inbox prefix follows. */
  role?: 'viewer' | 'admin';
  expect?: ExpectedInstance[];
}

/** How the CLI connects: a URL and, when the server wants them, credentials. */
export interface NatsTarget {
  url: string;
  creds: string | undefined;
  nkey: string | undefined;
  tlsCa: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  role: 'viewer' | 'admin' | undefined;
  source: string;
  expect: ExpectedInstance[];
}

export function contextFile(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.CILIATE_CONTEXT_FILE ??
    join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'ciliate', 'context.json')
  );
}

export function readContext(env: NodeJS.ProcessEnv = process.env): CliContext | undefined {
  try {
    const raw = JSON.parse(readFileSync(contextFile(env), 'utf8')) as Partial<CliContext>;
    if (typeof raw.natsUrl !== 'string') return undefined;
    const expect = Array.isArray(raw.expect)
      ? raw.expect.filter(
          (e): e is ExpectedInstance =>
            typeof e?.component === 'string' && typeof e?.node === 'string',
        )
      : undefined;
    return {
      name: raw.name ?? 'default',
      natsUrl: raw.natsUrl,
      ...(raw.creds ? { creds: raw.creds } : {}),
      ...(raw.nkey ? { nkey: raw.nkey } : {}),
      ...(raw.tlsCa ? { tlsCa: raw.tlsCa } : {}),
      ...(raw.tlsCert ? { tlsCert: raw.tlsCert } : {}),
      ...(raw.tlsKey ? { tlsKey: raw.tlsKey } : {}),
      ...(raw.role === 'viewer' || raw.role === 'admin' ? { role: raw.role } : {}),
      ...(expect ? { expect } : {}),
    };
  } catch {
    return undefined;
  }
}

/** The CLI's principal when given by flag or environment: viewer or admin, else an error. */
function roleOf(value: string | undefined): 'viewer' | 'admin' | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'viewer' || value === 'admin') return value;
  throw new CiliateError(
    'bad_request',
    `--role (CILIATE_NATS_ROLE): Invalid value: ${JSON.stringify(value)}: must be viewer or admin`,
    { field: 'role' },
  );
}

export function resolveNats(
  flags: {
    nats?: string | undefined;
    creds?: string | undefined;
    nkey?: string | undefined;
    tlsCa?: string | undefined;
    tlsCert?: string | undefined;
    tlsKey?: string | undefined;
    role?: string | undefined;
  },
  env: NodeJS.ProcessEnv = process.env,
): NatsTarget {
  const ctx = readContext(env);
  // A flag, then the environment, then the context, for each credential on its own.
  const pick = (flag: string | undefined, envName: string, fromCtx: string | undefined) =>
    flag ?? env[envName] ?? fromCtx;
  const tlsCert = pick(flags.tlsCert, 'CILIATE_NATS_TLS_CERT', ctx?.tlsCert);
  const auth = {
    creds: pick(flags.creds, 'CILIATE_NATS_CREDS', ctx?.creds),
    nkey: pick(flags.nkey, 'CILIATE_NATS_NKEY', ctx?.nkey),
    tlsCa: pick(flags.tlsCa, 'CILIATE_NATS_TLS_CA', ctx?.tlsCa),
    tlsCert,
    tlsKey: pick(flags.tlsKey, 'CILIATE_NATS_TLS_KEY', ctx?.tlsKey),
    role: roleOf(flags.role ?? env.CILIATE_NATS_ROLE) ?? roleOfCertificate(tlsCert) ?? ctx?.role,
  };
  // what the context expects holds only for the context's own NATS
  const expect = ctx && !flags.nats && !env.CILIATE_NATS_URL ? (ctx.expect ?? []) : [];
  if (flags.nats) return { url: flags.nats, ...auth, source: '--nats', expect };
  if (env.CILIATE_NATS_URL) {
    return { url: env.CILIATE_NATS_URL, ...auth, source: 'CILIATE_NATS_URL', expect };
  }
  if (ctx) return { url: ctx.natsUrl, ...auth, source: `context ${ctx.name}`, expect };
  return { url: DEFAULT_NATS_URL, ...auth, source: 'default', expect };
}

const CLI_ROLES = ['viewer', 'admin'] as const;

/**
 * The CLI principal a client certificate was issued to: its common name is the principal's NATS
 * user name. The CLI's replies must come to that principal's own inbox prefix (the only one it
 * may subscribe to), also when its files come from flags or the environment rather than a
 * context; the certificate in use is the one that says who it is.
 */
export function roleOfCertificate(file: string | undefined): 'viewer' | 'admin' | undefined {
  if (file === undefined) return undefined;
  let cn: string | undefined;
  try {
    cn = new X509Certificate(readFileSync(file)).subject
      .split('\n')
      .find((l) => l.startsWith('CN='))
      ?.slice('CN='.length);
  } catch {
    // unreadable or not a certificate: connecting with it fails and says so
    return undefined;
  }
  return CLI_ROLES.find((role) => principalName({ role }) === cn);
}
