// A real Kubernetes API for the kubernetes test tier: Debian's etcd and a kube-apiserver built
// by scripts/ensure-kube.sh, on free loopback ports, with certificates made for this run only,
// RBAC on, and everything (processes, certificates, etcd data) gone on close or process exit.
//
// Only the API server runs: no controller-manager, scheduler or kubelet. So Pods stay Pending
// unless a test writes their status, Services get no EndpointSlices by themselves, and a deleted
// Namespace stays Terminating (nothing removes its `kubernetes` finalizer). The ServiceAccount
// admission plugin is off because no controller creates the `default` ServiceAccount it insists
// on.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { atExitKill, atExitRemoveDir } from './cleanup.js';
import { freePort } from './ports.js';
import { sleep, waitFor } from './wait.js';

export interface KubectlResult {
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `apply -f -`). */
  input?: string;
  /** Another kubeconfig, e.g. one from `makeUserKubeconfig`; the admin one by default. */
  kubeconfig?: string;
  timeoutMs?: number;
}

export interface KubeApiserver {
  /** https://127.0.0.1:PORT */
  readonly url: string;
  /** An admin kubeconfig (client certificate in group system:masters), self-contained. */
  readonly kubeconfig: string;
  /** Where kube-apiserver and kubectl were found. */
  readonly binDir: string;
  /** The Kubernetes release of the binaries, e.g. v1.34.4. */
  readonly version: string;
  /** The temporary directory holding certificates, kubeconfigs and logs; removed on close. */
  readonly dir: string;
  readonly pids: { readonly etcd: number; readonly apiserver: number };
  /** Runs kubectl against this API (as admin unless `opts.kubeconfig` says otherwise). */
  kubectl(args: readonly string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /**
   * A kubeconfig that authenticates as `user` in `groups` with a client certificate, which has
   * no rights until a test binds some: for RBAC tests.
   */
  makeUserKubeconfig(user: string, groups?: readonly string[]): Promise<string>;
  /** Stops kube-apiserver and etcd and removes every file they had. */
  close(): Promise<void>;
}

export interface KubeApiserverOptions {
  /** How long to wait for /readyz; 120 s by default (the first start of the day is slow). */
  timeoutMs?: number;
  /** Extra kube-apiserver flags, e.g. `--feature-gates=...`. */
  extraArgs?: readonly string[];
}

export class KubectlError extends Error {
  readonly code = 'KUBECTL_FAILED';
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`kubectl ${args.join(' ')} exited with ${exitCode ?? 'a signal'}: ${stderr.trim()}`);
    this.name = 'KubectlError';
  }
}

const TOOL_GO_MOD = join('tools', 'kube-apiserver', 'go.mod');
const SERVICE_CIDR = '10.96.0.0/16';
const SERVICE_IP = '10.96.0.1';
// Names go into certificate subjects through an openssl config file; keep them to characters
// that need no escaping there (Kubernetes user and group names in practice, including
// system:serviceaccount:ns:name).
const SUBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9:._@-]*$/;

function findRepoGoMod(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, TOOL_GO_MOD);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** The release pinned in tools/kube-apiserver/go.mod, read the way scripts/lib.sh reads it. */
export function kubeVersion(): string {
  const goMod = findRepoGoMod();
  if (goMod === undefined) {
    throw new Error(`cannot find ${TOOL_GO_MOD} above ${fileURLToPath(import.meta.url)}`);
  }
  for (const line of readFileSync(goMod, 'utf8').split('\n')) {
    const [mod, version] = line.trim().split(/\s+/);
    if (mod === 'k8s.io/kubernetes' && version !== undefined && /^v\d/.test(version)) {
      return version;
    }
  }
  throw new Error(`no k8s.io/kubernetes requirement in ${goMod}`);
}

/**
 * The directory holding kube-apiserver and kubectl: $CILIATE_KUBE_BIN_DIR, else the cache that
 * scripts/ensure-kube.sh fills. Throws telling how to get them when they are missing.
 */
export function kubeBinDir(): string {
  const fromEnv = process.env.CILIATE_KUBE_BIN_DIR;
  const cache = process.env.CILIATE_CACHE ?? join(homedir(), '.cache', 'ciliate');
  const dir = fromEnv ?? join(cache, 'kube', kubeVersion(), 'bin');
  for (const bin of ['kube-apiserver', 'kubectl']) {
    if (!existsSync(join(dir, bin))) {
      const where = fromEnv !== undefined ? 'CILIATE_KUBE_BIN_DIR' : 'the build cache';
      throw new Error(
        `${bin} not found in ${dir} (${where}): run scripts/ensure-kube.sh to build it, ` +
          `or set CILIATE_KUBE_BIN_DIR to a directory holding kube-apiserver and kubectl`,
      );
    }
  }
  return dir;
}

function etcdBinary(): string {
  const bin = process.env.CILIATE_ETCD_BIN ?? '/usr/bin/etcd';
  if (!existsSync(bin)) {
    throw new Error(
      `etcd not found at ${bin}: run scripts/ensure-kube.sh (installs Debian's etcd-server), ` +
        `or set CILIATE_ETCD_BIN`,
    );
  }
  return bin;
}

function run(
  cmd: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    // No pid means the spawn failed, and the 'error' handler reports it.
    const forget = child.pid !== undefined ? atExitKill(child.pid) : () => false;
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      forget();
      reject(new Error(`cannot run ${cmd}: ${err.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      forget();
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {
      // the process may exit before reading its input; its exit status tells what happened
    });
    child.stdin.end(opts.input ?? '');
  });
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  const res = await run('openssl', args, { cwd: dir });
  if (res.code !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${res.stderr.trim()}`);
}

interface CertRequest {
  name: string;
  commonName: string;
  organizations?: readonly string[];
  usage: 'serverAuth' | 'clientAuth';
  altNames?: readonly string[];
}

/** Writes NAME.key and NAME.crt signed by the run's CA (ca.key, ca.crt in `dir`). */
async function issueCert(dir: string, req: CertRequest): Promise<void> {
  const subject = [
    ...(req.organizations ?? []).map((o, i) => `${i}.O = ${o}`),
    `CN = ${req.commonName}`,
  ];
  const ext = [
    'basicConstraints = critical, CA:FALSE',
    'keyUsage = critical, digitalSignature, keyEncipherment',
    `extendedKeyUsage = ${req.usage}`,
    ...(req.altNames?.length ? [`subjectAltName = ${req.altNames.join(', ')}`] : []),
  ];
  const conf = join(dir, `${req.name}.cnf`);
  await writeFile(
    conf,
    [
      '[req]',
      'prompt = no',
      'distinguished_name = dn',
      '[dn]',
      ...subject,
      '[ext]',
      ...ext,
      '',
    ].join('\n'),
  );
  await openssl(dir, [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    `${req.name}.key`,
    '-out',
    `${req.name}.csr`,
    '-config',
    conf,
  ]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${req.name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-set_serial',
    `0x${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
    '-days',
    '2',
    '-sha256',
    '-extfile',
    conf,
    '-extensions',
    'ext',
    '-out',
    `${req.name}.crt`,
  ]);
}

async function makeCa(dir: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=ciliate-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign,digitalSignature',
  ]);
}

async function makeServiceAccountKey(dir: string): Promise<void> {
  await openssl(dir, [
    'genpkey',
    '-algorithm',
    'RSA',
    '-pkeyopt',
    'rsa_keygen_bits:2048',
    '-out',
    'sa.key',
  ]);
  await openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
}

async function writeKubeconfig(
  dir: string,
  file: string,
  url: string,
  user: string,
  certName: string,
): Promise<string> {
  const b64 = async (f: string): Promise<string> =>
    (await readFile(join(dir, f))).toString('base64');
  const path = join(dir, file);
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: ciliate-test',
    '  cluster:',
    `    server: ${url}`,
    `    certificate-authority-data: ${await b64('ca.crt')}`,
    'users:',
    `- name: ${JSON.stringify(user)}`,
    '  user:',
    `    client-certificate-data: ${await b64(`${certName}.crt`)}`,
    `    client-key-data: ${await b64(`${certName}.key`)}`,
    'contexts:',
    '- name: ciliate-test',
    '  context:',
    '    cluster: ciliate-test',
    `    user: ${JSON.stringify(user)}`,
    'current-context: ciliate-test',
    '',
  ].join('\n');
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

/** A background server whose output goes to a log file, killed at exit whatever happens. */
class Daemon {
  private readonly exited: Promise<void>;
  private forgetKill: () => void;

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.forgetKill = atExitKill(child.pid!);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(
    name: string,
    cmd: string,
    args: readonly string[],
    logFile: string,
  ): Promise<Daemon> {
    const log = await open(logFile, 'a');
    try {
      const child = spawn(cmd, args, { stdio: ['ignore', log.fd, log.fd] });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) => reject(new Error(`cannot start ${cmd}: ${err.message}`)));
      });
      return new Daemon(name, child, logFile);
    } finally {
      await log.close();
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async logTail(): Promise<string> {
    try {
      const text = await readFile(this.logFile, 'utf8');
      return text.split('\n').slice(-25).join('\n');
    } catch {
      return '';
    }
  }

  /** Throws with the end of the log when the process has already exited. */
  async assertRunning(): Promise<void> {
    if (this.running) return;
    const how =
      this.child.signalCode !== null
        ? `signal ${this.child.signalCode}`
        : `code ${this.child.exitCode}`;
    throw new Error(`${this.name} exited early (${how}):\n${await this.logTail()}`);
  }

  async stop(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const done = await Promise.race([
        this.exited.then(() => true),
        sleep(5000).then(() => false),
      ]);
      if (!done) {
        this.child.kill('SIGKILL');
        await this.exited;
      }
    }
    this.forgetKill();
  }
}

function httpsGet(
  url: string,
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** A memory-backed place for etcd's data when there is one: fsync on a shared disk is slow. */
function etcdBase(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

const ADDRESS_IN_USE = /address already in use/i;

async function startOnce(
  dir: string,
  etcdDir: string,
  binDir: string,
  opts: KubeApiserverOptions,
): Promise<{ etcd: Daemon; apiserver: Daemon; url: string }> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const etcd = await Daemon.start(
    'etcd',
    etcdBinary(),
    [
      '--name=ciliate-test',
      `--data-dir=${etcdDir}`,
      `--listen-client-urls=http://127.0.0.1:${clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=ciliate-test=http://127.0.0.1:${peerPort}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-level=warn',
    ],
    join(dir, 'etcd.log'),
  );
  let apiserver: Daemon | undefined;
  try {
    await waitFor(
      `etcd on 127.0.0.1:${clientPort}`,
      async () => {
        await etcd.assertRunning();
        const res = await fetch(`http://127.0.0.1:${clientPort}/health`, {
          signal: AbortSignal.timeout(1000),
        });
        const body = (await res.json()) as { health?: string };
        return body.health === 'true' ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );

    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    apiserver = await Daemon.start(
      'kube-apiserver',
      join(binDir, 'kube-apiserver'),
      [
        `--etcd-servers=http://127.0.0.1:${clientPort}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${port}`,
        `--cert-dir=${dir}`,
        `--tls-cert-file=${join(dir, 'apiserver.crt')}`,
        `--tls-private-key-file=${join(dir, 'apiserver.key')}`,
        `--client-ca-file=${join(dir, 'ca.crt')}`,
        '--authorization-mode=RBAC',
        '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
        `--service-account-key-file=${join(dir, 'sa.pub')}`,
        `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
        `--service-cluster-ip-range=${SERVICE_CIDR}`,
        '--disable-admission-plugins=ServiceAccount',
        // The apiserver would publish 127.0.0.1 as the `kubernetes` Service's endpoint, which
        // validation refuses (loopback); nothing in the tests dials that Service.
        '--endpoint-reconciler-type=none',
        '--profiling=false',
        '--v=1',
        ...(opts.extraArgs ?? []),
      ],
      join(dir, 'kube-apiserver.log'),
    );
    const tls = {
      ca: await readFile(join(dir, 'ca.crt')),
      cert: await readFile(join(dir, 'admin.crt')),
      key: await readFile(join(dir, 'admin.key')),
    };
    const api = apiserver;
    await waitFor(
      `kube-apiserver ${url}/readyz`,
      async () => {
        await etcd.assertRunning();
        await api.assertRunning();
        const res = await httpsGet(`${url}/readyz`, tls);
        if (res.status !== 200) throw new Error(`/readyz: ${res.status} ${res.body.trim()}`);
        return true;
      },
      { timeoutMs: opts.timeoutMs ?? 120_000, intervalMs: 200 },
    );
    return { etcd, apiserver, url };
  } catch (err) {
    await apiserver?.stop();
    await etcd.stop();
    throw err;
  }
}

/** Starts etcd and kube-apiserver for one test (or one file of tests). */
export async function startKubeApiserver(opts: KubeApiserverOptions = {}): Promise<KubeApiserver> {
  const binDir = kubeBinDir();
  const version = kubeVersion();
  etcdBinary();
  const dir = await mkdtemp(join(tmpdir(), 'ciliate-kube-'));
  const forgetDir = atExitRemoveDir(dir);
  const etcdParent = await mkdtemp(join(etcdBase(), 'ciliate-etcd-'));
  const forgetEtcdDir = atExitRemoveDir(etcdParent);
  const removeFiles = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    await rm(etcdParent, { recursive: true, force: true });
    forgetDir();
    forgetEtcdDir();
  };

  let started: { etcd: Daemon; apiserver: Daemon; url: string } | undefined;
  try {
    await makeCa(dir);
    await issueCert(dir, {
      name: 'apiserver',
      commonName: 'kube-apiserver',
      usage: 'serverAuth',
      altNames: [
        'IP:127.0.0.1',
        `IP:${SERVICE_IP}`,
        'DNS:localhost',
        'DNS:kubernetes',
        'DNS:kubernetes.default',
        'DNS:kubernetes.default.svc',
        'DNS:kubernetes.default.svc.cluster.local',
      ],
    });
    await issueCert(dir, {
      name: 'admin',
      commonName: 'ciliate-admin',
      organizations: ['system:masters'],
      usage: 'clientAuth',
    });
    await makeServiceAccountKey(dir);

    // Free ports are only free until someone takes them: a lost race is retried on new ports.
    for (let attempt = 1; ; attempt++) {
      const etcdDir = join(etcdParent, `data-${attempt}`);
      await mkdir(etcdDir, { mode: 0o700 });
      try {
        started = await startOnce(dir, etcdDir, binDir, opts);
        break;
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        if (attempt >= 3 || !ADDRESS_IN_USE.test(msg)) throw err;
      }
    }
  } catch (err) {
    await removeFiles();
    throw err;
  }

  const { etcd, apiserver, url } = started;
  const kubeconfig = await writeKubeconfig(dir, 'admin.kubeconfig', url, 'ciliate-admin', 'admin');
  const cacheDir = join(dir, 'kubectl-cache');
  let closed = false;

  const kubectl = async (
    args: readonly string[],
    kopts: KubectlOptions = {},
  ): Promise<KubectlResult> => {
    const full = [`--kubeconfig=${kopts.kubeconfig ?? kubeconfig}`, `--cache-dir=${cacheDir}`];
    const res = await run(join(binDir, 'kubectl'), [...full, ...args], {
      input: kopts.input,
      timeoutMs: kopts.timeoutMs ?? 60_000,
    });
    if (res.code !== 0) throw new KubectlError(args, res.code, res.stdout, res.stderr);
    return { stdout: res.stdout, stderr: res.stderr };
  };

  let users = 0;
  const makeUserKubeconfig = async (
    user: string,
    groups: readonly string[] = [],
  ): Promise<string> => {
    for (const name of [user, ...groups]) {
      if (!SUBJECT_NAME.test(name)) {
        throw new Error(
          `user or group name ${JSON.stringify(name)} is not supported: use letters, digits and :._@-`,
        );
      }
    }
    const certName = `user-${++users}`;
    await issueCert(dir, {
      name: certName,
      commonName: user,
      organizations: groups,
      usage: 'clientAuth',
    });
    return writeKubeconfig(dir, `${certName}.kubeconfig`, url, user, certName);
  };

  return {
    url,
    kubeconfig,
    binDir,
    version,
    dir,
    pids: { etcd: etcd.pid, apiserver: apiserver.pid },
    kubectl,
    makeUserKubeconfig,
    async close() {
      if (closed) return;
      closed = true;
      await apiserver.stop();
      await etcd.stop();
      await removeFiles();
    },
  };
}
