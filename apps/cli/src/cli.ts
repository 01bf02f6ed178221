// The command framework: global flags, one module per command, errors turned into messages and
// exit codes (1: the operation failed, 2: the command line was wrong).
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { connect, type NatsConnection } from '@nats-io/transport-node';
import { CiliateError, inboxPrefix } from '@ciliate/contracts';
import { natsConnectionOptions } from '@ciliate/runtime';

import { resolveNats, type ExpectedInstance } from './context.js';
import { OUTPUT_FORMATS, type OutputFormat } from './output.js';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  /** True when stderr is a terminal, so progress may be redrawn in place. */
  interactive: boolean;
  env: NodeJS.ProcessEnv;
  readStdin: () => Promise<string>;
}

export interface Globals {
  nats: string | undefined;
  creds: string | undefined;
  nkey: string | undefined;
  tlsCa: string | undefined;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  role: string | undefined;
  output: OutputFormat;
}

export interface CommandContext {
  io: Io;
  globals: Globals;
  /** Connects to NATS (once) with the global flags; fails with a message naming the URL. */
  connect(opts?: { retryUntil?: number }): Promise<NatsConnection>;
  natsUrl(): string;
  /** Instances the current context expects to be running (empty without a context). */
  expected(): ExpectedInstance[];
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** More than the usage line, shown by --help only. */
  help?: string;
  options: NonNullable<ParseArgsConfig['options']>;
  allowPositionals?: boolean;
  run(
    ctx: CommandContext,
    values: Record<string, string | boolean | string[] | undefined>,
    positionals: string[],
  ): Promise<number>;
}

const GLOBAL_OPTIONS = {
  nats: { type: 'string' },
  creds: { type: 'string' },
  nkey: { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  role: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export const GLOBAL_USAGE = `Global flags:
  --nats URL          NATS server (env CILIATE_NATS_URL; else the current context; else nats://127.0.0.1:4222)
  --creds FILE        NATS credentials file (env CILIATE_NATS_CREDS)
  --nkey FILE         NATS nkey seed file (env CILIATE_NATS_NKEY)
  --tls-ca FILE       CA that signed the NATS server's certificate (env CILIATE_NATS_TLS_CA)
  --tls-cert FILE     client certificate for mutual TLS (env CILIATE_NATS_TLS_CERT)
  --tls-key FILE      client key for mutual TLS (env CILIATE_NATS_TLS_KEY)
  --role ROLE         whose credentials these are: viewer or admin (env CILIATE_NATS_ROLE)
  -o, --output FMT    table (default), json or yaml
  -h, --help          help for a command`;

function topUsage(commands: Command[]): string {
  const list = commands.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`).join('\n');
  return `ciliate: pod networking, policy and observability on eBPF and NATS\n\nUsage: ciliate COMMAND [flags]\n\nCommands:\n${list}\n\n${GLOBAL_USAGE}\n`;
}

export async function runCli(argv: string[], commands: Command[], io: Io): Promise<number> {
  const name = argv[0];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(topUsage(commands));
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.name === name);
  if (!cmd) {
    io.err(`error: unknown command "${name}"\n\n${topUsage(commands)}`);
    return 2;
  }
  let nc: NatsConnection | undefined;
  try {
    const { values, positionals } = parseArgs({
      args: argv.slice(1),
      options: { ...GLOBAL_OPTIONS, ...cmd.options },
      allowPositionals: cmd.allowPositionals ?? false,
      strict: true,
    });
    if (values.help) {
      io.out(
        `${cmd.summary}\n\nUsage: ${cmd.usage}\n\n${cmd.help ? `${cmd.help}\n\n` : ''}${GLOBAL_USAGE}\n`,
      );
      return 0;
    }
    const output = values.output ?? 'table';
    if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
      throw new UsageError(`--output: "${output}" is not one of ${OUTPUT_FORMATS.join(', ')}`);
    }
    const globals: Globals = {
      nats: values.nats,
      creds: values.creds,
      nkey: values.nkey,
      tlsCa: values['tls-ca'],
      tlsCert: values['tls-cert'],
      tlsKey: values['tls-key'],
      role: values.role,
      output: output as OutputFormat,
    };
    const target = resolveNats(globals, io.env);
    const ctx: CommandContext = {
      io,
      globals,
      natsUrl: () => target.url,
      expected: () => target.expect,
      async connect(opts = {}) {
        if (nc) return nc;
        const options = natsConnectionOptions({
          servers: target.url,
          name: `ciliate-cli`,
          credsFile: target.creds,
          nkeySeedFile: target.nkey,
          tlsCaFile: target.tlsCa,
          tlsCertFile: target.tlsCert,
          tlsKeyFile: target.tlsKey,
          ...(target.role ? { inboxPrefix: inboxPrefix({ role: target.role }) } : {}),
          timeoutMs: 2000,
        });
        for (;;) {
          try {
            nc = await connect({ ...options, maxReconnectAttempts: 10 });
            return nc;
          } catch (err) {
            if (opts.retryUntil !== undefined && Date.now() < opts.retryUntil) {
              await new Promise((r) => setTimeout(r, 500));
              continue;
            }
            const why = err instanceof Error ? err.message : String(err);
            throw new CiliateError(
              'unavailable',
              `cannot reach NATS at ${target.url} (from ${target.source}): ${why}`,
            );
          }
        }
      },
    };
    return await cmd.run(ctx, values, positionals);
  } catch (err) {
    if (
      err instanceof UsageError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))
    ) {
      io.err(`error: ${err.message}\nUsage: ${cmd.usage}\n`);
      return 2;
    }
    const message = err instanceof Error ? err.message : String(err);
    io.err(/^(error\b|Error from server)/.test(message) ? `${message}\n` : `error: ${message}\n`);
    return 1;
  } finally {
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
  }
}
