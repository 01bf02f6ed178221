// `ciliate security issue`: NATS credentials for a cluster (runtime's issueSecurity): the CA, the
// server's certificate, each component's nkey and client certificate, and the nats-server
// configuration block that requires them. Issued again into the same directory, it rotates.
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

import { NODE_ROLES, ROLES, nodeNameProblem, principalsFor } from '@ciliate/contracts';
import { parseIp } from '@ciliate/netaddr';
import { issueSecurity, type SecurityBundle } from '@ciliate/runtime';

import { UsageError, type Command } from '../cli.js';
import { formatTable, render } from '../output.js';

const CLUSTER_ROLES = ROLES.filter((r) => !NODE_ROLES.has(r));

const USAGE =
  'ciliate security issue --dir DIR [--node NAME ...] [--host HOST ...] [--mount PATH] [-o table|json|yaml]';

const HELP = `Issues into DIR a certificate authority (ca.crt, ca.key), the NATS server's certificate
(server.crt, server.key: valid for 127.0.0.1, localhost and every --host), for each principal an
nkey seed and a client certificate (DIR/ciliate-<role>[-<node>]/nkey.seed, tls.crt, tls.key), and
nats-security.conf: the block to include in nats-server's configuration (TLS with client
verification, one nkey user per principal with its rights from the contracts' table). Keys,
seeds and nats-security.conf are readable by their owner only. --mount PATH: nats-server sees
DIR at PATH (a container's mount), so nats-security.conf names the server's files there.

Principals: every cluster-wide role (${CLUSTER_ROLES.join(', ')}),
and the ${[...NODE_ROLES].join(' and ')} of every --node.

Rotation: running it again with the same DIR keeps the CA and replaces the server certificate
and every principal's certificate and nkey; nats-security.conf then lists exactly the principals
of that run (name every node again). Reload nats-server afterwards (nats-server --signal reload,
or SIGHUP): it drops the connections of the users it no longer has, and Ciliate's services
reconnect with their new files, which they read at every connect.`;

function list(value: string | boolean | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [String(value)];
}

function checkNode(node: string): string {
  const problem = nodeNameProblem(node);
  if (problem !== undefined) {
    throw new UsageError(`--node: Invalid value: ${JSON.stringify(node)}: ${problem}`);
  }
  return node;
}

/** An address (issueSecurity writes it as an IP entry) or a DNS name. */
function checkHost(host: string): string {
  if (/^[\d.]+$|:/.test(host)) {
    const ip = parseIp(host);
    if (!ip.ok)
      throw new UsageError(`--host: Invalid value: ${JSON.stringify(host)}: ${ip.reason}`);
    return host;
  }
  const problem = nodeNameProblem(host);
  if (problem !== undefined) {
    throw new UsageError(
      `--host: Invalid value: ${JSON.stringify(host)}: an IP address, or a name that ${problem}`,
    );
  }
  return host;
}

interface IssueReport {
  dir: string;
  /** False when the directory already had a CA (a rotation). */
  newCa: boolean;
  caFile: string;
  caKeyFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  hosts: string[];
  /** The nats-server configuration block to include. */
  includeFile: string;
  /** Where nats-server sees `dir`, when not at `dir` itself. */
  mount?: string;
  principals: {
    name: string;
    role: string;
    node?: string;
    nkeyPublic: string;
    nkeySeedFile: string;
    certFile: string;
    keyFile: string;
  }[];
}

function report(
  bundle: SecurityBundle,
  newCa: boolean,
  hosts: string[],
  mount: string | undefined,
): IssueReport {
  return {
    dir: bundle.dir,
    newCa,
    caFile: bundle.caFile,
    caKeyFile: resolve(bundle.dir, 'ca.key'),
    serverCertFile: bundle.serverCertFile,
    serverKeyFile: bundle.serverKeyFile,
    hosts: [...new Set(['127.0.0.1', 'localhost', ...hosts])],
    includeFile: resolve(bundle.dir, 'nats-security.conf'),
    ...(mount !== undefined ? { mount } : {}),
    principals: [...bundle.principals.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((p) => ({
        name: p.name,
        role: p.principal.role,
        ...(p.principal.node !== undefined ? { node: p.principal.node } : {}),
        nkeyPublic: p.nkeyPublic,
        nkeySeedFile: p.nkeySeedFile,
        certFile: p.certFile,
        keyFile: p.keyFile,
      })),
  };
}

function table(r: IssueReport): string {
  const out: string[] = [];
  out.push(
    r.newCa
      ? `Issued a new CA and credentials for ${r.principals.length} principals in ${r.dir}\n\n`
      : `Rotated: kept the CA, replaced the server certificate and the credentials of ${r.principals.length} principals in ${r.dir}\n\n`,
  );
  out.push(
    formatTable(
      ['WHAT', 'FILES'],
      [
        ['CA', `${r.caFile} (key ${r.caKeyFile}: keep it off the servers)`],
        ['server certificate', `${r.serverCertFile}, ${r.serverKeyFile} (${r.hosts.join(', ')})`],
        [
          'nats-server include',
          r.mount === undefined
            ? r.includeFile
            : `${r.includeFile} (naming the server's files under ${r.mount})`,
        ],
      ],
    ),
  );
  out.push('\n');
  out.push(
    formatTable(
      ['PRINCIPAL', 'NKEY SEED', 'CERTIFICATE', 'KEY'],
      r.principals.map((p) => [p.name, p.nkeySeedFile, p.certFile, p.keyFile]),
    ),
  );
  out.push(`
Next:
  nats-server: include nats-security.conf in its configuration (the path relative to the configuration file's directory), then ${r.newCa ? 'start it' : 'reload it: nats-server --signal reload (or SIGHUP)'}
  a service: --nats-nkey, --nats-tls-ca, --nats-tls-cert, --nats-tls-key (or CILIATE_NATS_NKEY, CILIATE_NATS_TLS_CA, CILIATE_NATS_TLS_CERT, CILIATE_NATS_TLS_KEY) with its principal's files
  the CLI: --nkey, --tls-ca, --tls-cert, --tls-key with the admin's (or the viewer's) files
`);
  return out.join('');
}

export const securityCommand: Command = {
  name: 'security',
  summary:
    "Issue or rotate NATS credentials: CA, server certificate, each component's nkey and certificate",
  usage: USAGE,
  help: HELP,
  allowPositionals: true,
  options: {
    dir: { type: 'string' },
    node: { type: 'string', multiple: true },
    host: { type: 'string', multiple: true },
    mount: { type: 'string' },
  },
  async run(ctx, values, positionals) {
    const [sub, ...rest] = positionals;
    if (sub !== 'issue') {
      throw new UsageError(
        sub === undefined ? 'a subcommand is needed: issue' : `unknown subcommand "${sub}"`,
      );
    }
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    if (typeof values.dir !== 'string' || values.dir === '') {
      throw new UsageError('--dir: Required value: the directory to issue the credentials into');
    }
    const nodes = [...new Set(list(values.node).map(checkNode))];
    const hosts = [...new Set(list(values.host).map(checkHost))];
    // Absolute: the paths end up in nats-security.conf, read by a server started elsewhere.
    const dir = resolve(values.dir);
    const newCa = !existsSync(resolve(dir, 'ca.crt'));
    const mount = values.mount;
    if (mount !== undefined && (typeof mount !== 'string' || !isAbsolute(mount))) {
      throw new UsageError(
        `--mount: Invalid value: ${JSON.stringify(mount)}: must be an absolute path (where nats-server sees DIR)`,
      );
    }
    const bundle = await issueSecurity(dir, principalsFor(nodes), {
      hosts,
      ...(mount !== undefined ? { mountDir: mount } : {}),
    });
    const r = report(bundle, newCa, hosts, mount);
    ctx.io.out(render(ctx.globals.output, r, () => table(r)));
    return 0;
  },
};
