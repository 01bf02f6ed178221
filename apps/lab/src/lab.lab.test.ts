// The lab end to end, as root: up, pods applied through the resource store, HTTP between pods
// on different nodes, pods deleted, down; in a loop, each round checked for leftovers
// (namespaces, pinned maps, processes, files). Then a lab process killed (reported by the
// services' health, which `ciliate status` shows, while traffic keeps flowing), and two labs
// side by side, one of them then given new NATS credentials (`lab rotate`).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { principalName } from '@ciliate/contracts';
import type { Pod } from '@ciliate/resources';
import { credentialFiles, natsConnectionOptions } from '@ciliate/runtime';
import { ResourceStore } from '@ciliate/store';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import {
  currentLab,
  labConnectOptions,
  labDown,
  labExec,
  labLeftovers,
  labRotate,
  labStatus,
  labUp,
  pendingReadiness,
} from './lab.js';
import { DATAPATH_IMPL } from './datapath.js';
import { podNetns, type RoutingMode } from './plan.js';
import { readManifest, readPodRecords, labDir, type LabManifest } from './state.js';
import { isAlive, netnsExists, waitFor } from './sys.js';
import { REPLICAS_ANNOTATION } from './workloads.js';

const root = mkdtempSync(join(tmpdir(), 'ciliate-lab-test-'));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  CILIATE_STATE: join(root, 'state'),
  CILIATE_CONTEXT_FILE: join(root, 'context.json'),
};
const made = new Set<string>();
const suffix = randomBytes(2).toString('hex');

async function up(name: string, routing: RoutingMode = 'native'): Promise<LabManifest> {
  made.add(name);
  return labUp({ name, nodes: 2, routing, env, timeoutMs: 90_000 });
}

after(async () => {
  for (const name of made) await labDown({ name, env }).catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

function pod(
  name: string,
  node: string | undefined,
  extra: Record<string, unknown> = {},
  container: Record<string, unknown> = {},
): Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'app', labels: { app: name.replace(/-\d+$/, '') }, ...extra },
    spec: {
      containers: [{ name: 'c', ports: [{ containerPort: 8080, protocol: 'TCP' }], ...container }],
      ...(node ? { nodeName: node } : {}),
    },
  } as unknown as Pod;
}

/** Who each pod's process runs as: `uid:gid`, and `nnp` when it has no_new_privs. */
function podUsers(lab: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const r of readPodRecords(labDir(lab, env))) {
    if (!r.process) continue;
    const status = readFileSync(`/proc/${r.process.pid}/status`, 'utf8');
    const field = (name: string): string =>
      new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)![1]!;
    out.set(r.name, `${field('Uid')}:${field('Gid')}${field('NoNewPrivs') === '1' ? ' nnp' : ''}`);
  }
  return out;
}

async function withStore<T>(
  m: LabManifest,
  fn: (s: ResourceStore, nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const nc = await connect(labConnectOptions(m, 'lab-test'));
  try {
    return await fn(await ResourceStore.open(nc), nc);
  } finally {
    await nc.close();
  }
}

type Status = { phase?: string; podIP?: string; hostIP?: string; podIPs?: { ip: string }[] };

async function runningPods(s: ResourceStore, want: number): Promise<(Pod & { status: Status })[]> {
  return waitFor(
    `${want} running pods`,
    async () => {
      const pods = (await s.list<Pod>('Pod', 'app')).map(
        (e) => e.object as Pod & { status: Status },
      );
      const running = pods.filter((p) => p.status?.phase === 'Running' && p.status.podIP);
      return running.length >= want ? running : undefined;
    },
    60_000,
    300,
  );
}

async function curl(lab: string, from: string, ip: string, port = 8080): Promise<string> {
  const r = await labExec({
    name: lab,
    env,
    namespace: 'app',
    pod: from,
    cmd: ['curl', '-sS', '-m', '5', `http://${ip}:${port}/`],
    stdio: 'pipe',
  });
  return r.code === 0 ? r.stdout.trim() : `error ${r.code}: ${r.stderr.trim()}`;
}

describe('lab', { timeout: 600_000 }, () => {
  before(() => {
    assert.equal(process.getuid?.(), 0, 'the lab tier runs as root');
  });

  // the second round tunnels when the datapath service is there (the agent routes natively only)
  const rounds: RoutingMode[] = ['native', DATAPATH_IMPL === 'service' ? 'vxlan' : 'native'];
  for (const [i, routing] of rounds.entries()) {
    it(`round ${i + 1} (${routing}): up, pods across nodes, exec, delete, down without leftovers`, async () => {
      const name = `lt${suffix}`;
      const m = await up(name, routing);
      assert.equal(currentLab(env), name, 'the context points at the lab');
      await withStore(m, async (s) => {
        await s.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } });
        await s.apply(pod('client', 'node-1'));
        // not root, yet serving on port 80: the pod's namespace lets any user bind it
        await s.apply(
          pod(
            'server',
            'node-2',
            {},
            {
              ports: [
                { containerPort: 8080, protocol: 'TCP' },
                { containerPort: 80, protocol: 'TCP' },
              ],
            },
          ),
        );
        // the replicas shorthand, spread over both nodes; these ask for privilege
        await s.apply(
          pod(
            'web',
            undefined,
            { annotations: { [REPLICAS_ANNOTATION]: '2' } },
            { securityContext: { privileged: true } },
          ),
        );
        const pods = await runningPods(s, 4);
        assert.deepEqual(
          Object.fromEntries([...podUsers(name)].sort()),
          {
            client: '65534:65534 nnp',
            server: '65534:65534 nnp',
            'web-0': '0:0',
            'web-1': '0:0',
          },
          'pods run as nobody unless they ask for privilege',
        );
        const byName = new Map(pods.map((p) => [p.metadata.name, p]));
        const server = byName.get('server')!;
        assert.equal(server.status.hostIP, m.plan.nodes[1]!.ip);
        assert.deepEqual(server.status.podIPs, [{ ip: server.status.podIP }]);
        assert.equal(byName.get('web-0')?.spec.nodeName, 'node-1');
        assert.equal(byName.get('web-1')?.spec.nodeName, 'node-2');
        // node-1 -> node-2 and node-2 -> node-1
        assert.equal(await curl(name, 'client', server.status.podIP!), 'server');
        assert.equal(await curl(name, 'client', server.status.podIP!, 80), 'server');
        assert.equal(await curl(name, 'web-1', byName.get('client')!.status.podIP!), 'client');
        // TCP that is not HTTP is echoed
        const echo = await labExec({
          name,
          env,
          namespace: 'app',
          pod: 'client',
          cmd: [
            process.execPath,
            '-e',
            `const s=require('net').connect(8080,'${server.status.podIP}');s.on('connect',()=>s.write('echo me'));s.on('data',d=>{process.stdout.write(d);s.end()})`,
          ],
          stdio: 'pipe',
        });
        assert.equal(echo.stdout, 'echo me');

        await s.delete({ kind: 'Pod', namespace: 'app', name: 'server' });
        await s.delete({ kind: 'Pod', namespace: 'app', name: 'web' });
        await waitFor(
          'deleted pods to be torn down',
          () =>
            ['server', 'web-0', 'web-1'].every((p) => !netnsExists(podNetns(name, 'app', p))) ||
            undefined,
          30_000,
        );
        assert.deepEqual(
          labStatus({ name, env }).pods.map((p) => p.name),
          ['client'],
        );
      });
      await labDown({ name, env });
      made.delete(name);
      assert.deepEqual(labLeftovers(name, env), []);
      assert.equal(currentLab(env), undefined, 'the context is gone with the lab');
    });
  }

  it('a killed node datapath is reported while existing pods keep talking; a pod applied while IPAM is down runs once it is back', async () => {
    const name = `lk${suffix}`;
    const m = await up(name);
    await withStore(m, async (s, nc) => {
      await s.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } });
      await s.apply(pod('client', 'node-1'));
      await s.apply(pod('server', 'node-2'));
      const pods = await runningPods(s, 2);
      const serverIp = pods.find((p) => p.metadata.name === 'server')!.status.podIP!;
      assert.equal(await curl(name, 'client', serverIp), 'server');
      const dp = readManifest(labDir(name, env))!.processes.find(
        (p) => p.service === 'datapath' && p.node === 'node-2',
      )!;
      process.kill(dp.pid, 'SIGKILL');
      const pending = await waitFor(
        'the lab to report the dead datapath',
        async () => {
          const p = await pendingReadiness(nc, m);
          return p.some((x) => x.includes('datapath@node-2')) ? p : undefined;
        },
        20_000,
      );
      assert.ok(
        pending.some((x) => x.startsWith('lab@')),
        pending.join('; '),
      );
      // the kernel keeps forwarding without the node's userspace
      for (let i = 0; i < 3; i++) assert.equal(await curl(name, 'client', serverIp), 'server');
      // the lab's own service killed too: `ciliate status` (through the context the lab wrote)
      // lists both as missing, and traffic still flows
      const kubelet = readManifest(labDir(name, env))!.processes.find(
        (p) => p.service === 'kubelet',
      )!;
      process.kill(kubelet.pid, 'SIGKILL');
      const cli = fileURLToPath(new URL('../../cli/bin/ciliate.js', import.meta.url));
      const report = await waitFor(
        'ciliate status to list the killed processes as missing',
        () => {
          const r = spawnSync(process.execPath, [cli, 'status', '-o', 'json'], {
            env,
            encoding: 'utf8',
          });
          const j = JSON.parse(r.stdout) as {
            missing?: { component: string; node: string }[];
          };
          const keys = (j.missing ?? []).map((x) => `${x.component}@${x.node}`).sort();
          return keys.includes('lab@control-plane') && keys.includes('datapath@node-2')
            ? keys
            : undefined;
        },
        20_000,
      );
      assert.deepEqual(report, ['datapath@node-2', 'lab@control-plane']);
      assert.equal(await curl(name, 'client', serverIp), 'server');
      // `lab up` again starts what is not running
      await labUp({ name, env, timeoutMs: 60_000 });
      assert.ok(labStatus({ name, env }).processes.every((p) => p.running));
      assert.equal(await curl(name, 'client', serverIp), 'server');

      // IPAM down: a new pod's set-up fails (no address), and is not taken for a running pod
      const ipam = readManifest(labDir(name, env))!.processes.find((p) => p.service === 'ipam')!;
      process.kill(ipam.pid, 'SIGKILL');
      await waitFor('IPAM to exit', () => !isAlive(ipam) || undefined, 10_000);
      await s.apply(pod('late', 'node-1'));
      type LateStatus = Status & { reason?: string };
      const late = async () =>
        (
          await s.get<Pod & { status?: LateStatus }>({
            kind: 'Pod',
            namespace: 'app',
            name: 'late',
          })
        )?.object.status;
      await waitFor(
        "the pod's set-up to fail without IPAM",
        async () => (await late())?.reason === 'FailedCreatePodSandBox' || undefined,
        60_000,
        100,
      );
      // tried again after a backoff that doubles (1 s, then 2 s), and only then: neither its own
      // status write nor a resync brings an attempt early
      const kubeletLog = readManifest(labDir(name, env))!.processes.find(
        (p) => p.service === 'kubelet',
      )!.logFile;
      const attempts = () => {
        const lines = readFileSync(kubeletLog, 'utf8')
          .split('\n')
          .filter((l) => l.includes('"app/late"'))
          .map((l) => JSON.parse(l) as { event?: string; retryInMs?: number });
        return {
          failed: lines.filter((l) => l.event === 'pod.setup_failed').length,
          retries: lines.filter((l) => l.event === 'pod.reconcile_failed').map((l) => l.retryInMs),
        };
      };
      const twice = await waitFor(
        'two failed attempts',
        () => {
          const a = attempts();
          return a.retries.length >= 2 ? a : undefined;
        },
        60_000,
        100,
      );
      assert.deepEqual(twice.retries.slice(0, 2), [1000, 2000]);
      assert.ok(twice.failed <= twice.retries.length + 1, JSON.stringify(twice));
      // IPAM back: the kubelet's next attempt, at most a backoff step later, sets the pod up
      await labUp({ name, env, timeoutMs: 60_000 });
      const back = Date.now();
      const ip = await waitFor(
        'the pod to run after IPAM is back',
        async () => {
          const st = await late();
          return st?.phase === 'Running' ? st.podIP : undefined;
        },
        30_000,
        100,
      );
      const tookMs = Date.now() - back;
      assert.ok(tookMs < 20_000, `running ${tookMs} ms after IPAM was back`);
      assert.equal(await curl(name, 'client', ip), 'late');
    });
    await labDown({ name, env });
    made.delete(name);
    assert.deepEqual(labLeftovers(name, env), []);
  });

  it('a lab interrupted half-way is removed completely', async () => {
    const name = `li${suffix}`;
    made.add(name);
    const cli = fileURLToPath(new URL('../../cli/bin/ciliate.js', import.meta.url));
    // killed at several points of its start-up: early (NATS, namespaces) and later (services)
    for (const afterMs of [700, 2500]) {
      const child = spawn(process.execPath, [cli, 'lab', 'up', '--name', name], {
        env,
        stdio: 'ignore',
      });
      await new Promise((r) => setTimeout(r, afterMs));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('close', r));
      await labDown({ name, env });
      assert.deepEqual(labLeftovers(name, env), [], `killed after ${afterMs} ms`);
    }
    made.delete(name);
  });

  it('two labs run side by side; new credentials for one (lab rotate)', async () => {
    const a = `la${suffix}`;
    const b = `lb${suffix}`;
    const [ma, mb] = [await up(a), await up(b)];
    assert.notEqual(ma.plan.index, mb.plan.index);
    assert.notEqual(ma.natsPort, mb.natsPort);
    const serverIp = new Map<string, string>();
    for (const [name, m] of [
      [a, ma],
      [b, mb],
    ] as const) {
      await withStore(m, async (s) => {
        await s.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } });
        await s.apply(pod('client', 'node-2'));
        await s.apply(pod('server', 'node-1'));
        const pods = await runningPods(s, 2);
        const ip = pods.find((p) => p.metadata.name === 'server')!.status.podIP!;
        assert.ok(ip.startsWith(`10.${m.plan.index}.`), ip);
        assert.equal(await curl(name, 'client', ip), 'server');
        serverIp.set(name, ip);
      });
    }
    // b, the newest, is current; removing it moves the context to a, still up
    assert.equal(currentLab(env), b);
    await labDown({ name: b, env });
    made.delete(b);
    assert.deepEqual(labLeftovers(b, env), []);
    assert.equal(currentLab(env), a, 'the context moves to the lab still up');
    // a is untouched by b's removal
    assert.ok(labStatus({ name: a, env }).processes.every((p) => p.running));

    // new credentials for a: every process but NATS restarted with them, the lab ready, its pods
    // still talking, and the old admin nkey refused
    const admin = credentialFiles(ma.securityDir!, principalName({ role: 'admin' }));
    const oldSeed = join(root, 'old-admin.seed');
    copyFileSync(admin.nkeySeedFile, oldSeed);
    const pids = new Map(labStatus({ name: a, env }).processes.map((p) => [p.pid, p.service]));
    await labRotate({ name: a, env, timeoutMs: 90_000 });
    const rotated = labStatus({ name: a, env }).processes;
    assert.ok(
      rotated.every((p) => p.running),
      JSON.stringify(rotated),
    );
    assert.deepEqual(
      rotated.filter((p) => pids.has(p.pid)).map((p) => p.service),
      ['nats'],
      'every process but nats-server restarted',
    );
    await withStore(ma, async (_s, nc) => {
      assert.deepEqual(await pendingReadiness(nc, ma), []);
    });
    assert.equal(await curl(a, 'client', serverIp.get(a)!), 'server');
    await assert.rejects(
      connect(
        natsConnectionOptions({
          servers: ma.natsUrl,
          name: 'old-admin',
          nkeySeedFile: oldSeed,
          tlsCaFile: admin.caFile,
          tlsCertFile: admin.certFile,
          tlsKeyFile: admin.keyFile,
        }),
      ),
      /authorization/i,
    );
    await labDown({ name: a, env });
    made.delete(a);
    assert.deepEqual(labLeftovers(a, env), []);
    assert.equal(currentLab(env), undefined, 'no lab is up: no context');
  });
});
