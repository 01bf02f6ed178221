// Credentials for a Ciliate NATS: a certificate authority, the server's certificate, and for each
// principal (contracts' access table) an nkey and a client certificate; and the nats-server
// configuration that requires both (mutual TLS, then the nkey picks the user and its rights).
// Issuing again in the same directory keeps the CA and replaces every leaf: that is rotation.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';

import {
  inboxPrefix,
  permissionsOf,
  principalName,
  principalProblem,
  type Principal,
} from '@ciliate/contracts';
import { nkeys } from '@nats-io/transport-node';

import type { NatsSettings } from './nats.js';

const run = promisify(execFile);

export interface IssuedPrincipal {
  readonly principal: Principal;
  /** The NATS user name (contracts' principalName). */
  readonly name: string;
  readonly nkeyPublic: string;
  readonly nkeySeedFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

export interface SecurityBundle {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly principals: ReadonlyMap<string, IssuedPrincipal>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** An EC key and a certificate signed by the bundle's CA. */
async function leaf(
  dir: string,
  name: string,
  subject: string,
  ext: string,
  days: number,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  await writeFile(extFile, ext);
  await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  await openssl(dir, ['req', '-new', '-key', key, '-subj', `/CN=${subject}`, '-out', csr]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    // a random serial per certificate (leaves are issued in parallel)
    '-set_serial',
    `0x${randomBytes(16).toString('hex')}`,
    '-days',
    String(days),
    '-extfile',
    extFile,
    '-out',
    cert,
  ]);
  await chmod(key, 0o600);
  return { cert, key };
}

/**
 * Issues (or re-issues) credentials for `principals` in `dir`: the CA is made once and kept; the
 * server certificate (valid for `hosts`) and every principal's certificate and nkey are new.
 */
export async function issueSecurity(
  dir: string,
  principals: readonly Principal[],
  opts: {
    hosts?: readonly string[];
    days?: number;
    /** Where nats-server will see `dir` (a container's mount); the configuration names files there. */
    mountDir?: string;
  } = {},
): Promise<SecurityBundle> {
  for (const p of principals) {
    const problem = principalProblem(p);
    if (problem !== undefined) throw new Error(`principal ${JSON.stringify(p)}: ${problem}`);
  }
  const days = opts.days ?? 365;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const caFile = join(dir, 'ca.crt');
  if (!existsSync(caFile)) {
    await openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key']);
    await chmod(join(dir, 'ca.key'), 0o600);
    await openssl(dir, [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=ciliate-ca',
      '-days',
      String(days * 10),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'ca.crt',
    ]);
  }
  const hosts = ['127.0.0.1', 'localhost', ...(opts.hosts ?? [])];
  const san = [...new Set(hosts)]
    .map((h) => (/^[\d.]+$|:/.test(h) ? `IP:${h}` : `DNS:${h}`))
    .join(',');
  const server = await leaf(
    dir,
    'server',
    'ciliate-nats',
    `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`,
    days,
  );
  const issued = new Map<string, IssuedPrincipal>();
  await Promise.all(
    principals.map(async (principal) => {
      const name = principalName(principal);
      const files = credentialFiles(dir, name);
      await mkdir(join(dir, name), { recursive: true, mode: 0o700 });
      const kp = nkeys.createUser();
      const nkeySeedFile = files.nkeySeedFile;
      await writeFile(nkeySeedFile, new TextDecoder().decode(kp.getSeed()) + '\n', { mode: 0o600 });
      const { cert, key } = await leaf(
        dir,
        `${name}/tls`,
        name,
        'extendedKeyUsage=clientAuth\n',
        days,
      );
      issued.set(name, {
        principal,
        name,
        nkeyPublic: kp.getPublicKey(),
        nkeySeedFile,
        certFile: cert,
        keyFile: key,
      });
    }),
  );
  const bundle: SecurityBundle = {
    dir,
    caFile,
    serverCertFile: server.cert,
    serverKeyFile: server.key,
    principals: issued,
  };
  await writeFile(
    join(dir, 'nats-security.conf'),
    natsSecurityConfig(bundle, opts.mountDir === undefined ? {} : { mountDir: opts.mountDir }),
    { mode: 0o600 },
  );
  return bundle;
}

/** Reads the public keys back from a bundle's directory (for a configuration made elsewhere). */
export async function nkeyPublicOf(seedFile: string): Promise<string> {
  const seed = (await readFile(seedFile, 'utf8')).trim();
  return nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
}

const q = (s: string): string => JSON.stringify(s);

/**
 * The nats-server configuration block for a bundle: TLS with client verification, and one
 * nkey user per principal with the rights contracts' permissionsOf derives.
 */
export function natsSecurityConfig(
  bundle: SecurityBundle,
  opts: { mountDir?: string } = {},
): string {
  const at = (file: string): string =>
    opts.mountDir === undefined ? file : join(opts.mountDir, relative(bundle.dir, file));
  const users = [...bundle.principals.values()]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((p) => {
      const perms = permissionsOf(p.principal);
      return [
        `    # ${p.name}`,
        `    { nkey: ${q(p.nkeyPublic)}, permissions: {`,
        `        publish: { allow: [${perms.publish.map(q).join(', ')}] }`,
        `        subscribe: { allow: [${perms.subscribe.map(q).join(', ')}] }`,
        ...(perms.allowResponses ? ['        allow_responses: true'] : []),
        `    } }`,
      ].join('\n');
    });
  return [
    'tls {',
    `  cert_file: ${q(at(bundle.serverCertFile))}`,
    `  key_file: ${q(at(bundle.serverKeyFile))}`,
    `  ca_file: ${q(at(bundle.caFile))}`,
    '  verify: true',
    '  timeout: 5',
    '}',
    'authorization {',
    '  users: [',
    users.join('\n'),
    '  ]',
    '}',
    '',
  ].join('\n');
}

/** Where issueSecurity keeps a principal's files in `dir`. */
export function credentialFiles(
  dir: string,
  name: string,
): { nkeySeedFile: string; caFile: string; certFile: string; keyFile: string } {
  return {
    nkeySeedFile: join(dir, name, 'nkey.seed'),
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, name, 'tls.crt'),
    keyFile: join(dir, name, 'tls.key'),
  };
}

/** The settings (environment variables) a service needs to connect as `name`. */
export function credentialEnv(
  bundle: SecurityBundle | string,
  name: string,
): Record<string, string> {
  const dir = typeof bundle === 'string' ? bundle : bundle.dir;
  if (typeof bundle !== 'string' && !bundle.principals.has(name)) {
    throw new Error(`no credentials issued for ${name}`);
  }
  const f = credentialFiles(dir, name);
  return {
    CILIATE_NATS_NKEY: f.nkeySeedFile,
    CILIATE_NATS_TLS_CA: f.caFile,
    CILIATE_NATS_TLS_CERT: f.certFile,
    CILIATE_NATS_TLS_KEY: f.keyFile,
  };
}

/**
 * The connection settings of `principal` from the files issueSecurity keeps in `dir`: its nkey,
 * the CA, a client certificate (its own, or `certOf`'s) and its inbox prefix.
 */
export function principalNatsSettings(
  dir: string,
  principal: Principal,
  certOf: Principal = principal,
): Pick<NatsSettings, 'nkeySeedFile' | 'tlsCaFile' | 'tlsCertFile' | 'tlsKeyFile' | 'inboxPrefix'> {
  const own = credentialFiles(dir, principalName(principal));
  const cert = credentialFiles(dir, principalName(certOf));
  return {
    nkeySeedFile: own.nkeySeedFile,
    tlsCaFile: own.caFile,
    tlsCertFile: cert.certFile,
    tlsKeyFile: cert.keyFile,
    inboxPrefix: inboxPrefix(principal),
  };
}
