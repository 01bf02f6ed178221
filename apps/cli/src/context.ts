// Where the CLI finds NATS: --nats, then CILIATE_NATS_URL, then the current context (written by
// `ciliate lab up`), then the local default.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

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
  expect?: ExpectedInstance[];
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
      ...(expect ? { expect } : {}),
    };
  } catch {
    return undefined;
  }
}

export function resolveNats(
  flags: { nats?: string | undefined; creds?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): { url: string; creds: string | undefined; source: string; expect: ExpectedInstance[] } {
  const ctx = readContext(env);
  const creds = flags.creds ?? env.CILIATE_NATS_CREDS ?? ctx?.creds;
  // what the context expects holds only for the context's own NATS
  const expect = ctx && !flags.nats && !env.CILIATE_NATS_URL ? (ctx.expect ?? []) : [];
  if (flags.nats) return { url: flags.nats, creds, source: '--nats', expect };
  if (env.CILIATE_NATS_URL)
    return { url: env.CILIATE_NATS_URL, creds, source: 'CILIATE_NATS_URL', expect };
  if (ctx) return { url: ctx.natsUrl, creds, source: `context ${ctx.name}`, expect };
  return { url: DEFAULT_NATS_URL, creds, source: 'default', expect };
}
