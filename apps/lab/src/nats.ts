// The lab's own nats-server: the pinned release when it is there, else the one on the PATH.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, relative } from 'node:path';

import { REPO_ROOT } from './programs.js';

/** NATS_SERVER_BIN, else the release scripts/lib.sh (ensure_nats_server) builds, else PATH. */
export function natsServerBinary(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NATS_SERVER_BIN) return env.NATS_SERVER_BIN;
  try {
    const version = readFileSync(join(REPO_ROOT, 'tools', 'nats-server.version'), 'utf8').trim();
    const cache = env.CILIATE_CACHE ?? join(homedir(), '.cache', 'ciliate');
    const pinned = join(cache, 'nats-server', version, 'nats-server');
    if (existsSync(pinned)) return pinned;
  } catch {
    // not inside the repository
  }
  return 'nats-server';
}

/** Writes the server's configuration; returns the command that runs it. */
export function natsLaunch(opts: {
  dir: string;
  lab: string;
  port: number;
  /** The TLS and authorization block (issueSecurity's nats-security.conf), when secured. */
  include?: string | undefined;
}): string[] {
  const dir = join(opts.dir, 'nats');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'nats.conf');
  writeFileSync(
    conf,
    [
      `server_name: lab-${opts.lab}`,
      `listen: 127.0.0.1:${opts.port}`,
      `jetstream {`,
      `  store_dir: "${join(dir, 'jetstream')}"`,
      `  max_memory_store: 128MB`,
      `  max_file_store: 1GB`,
      `}`,
      // nats-server resolves an include against the configuration's own directory
      ...(opts.include ? [`include "${relative(dir, opts.include)}"`] : []),
      '',
    ].join('\n'),
  );
  return [natsServerBinary(), '-c', conf];
}
