// `ciliate lab demo`: applies the demo app (apps/lab/demo/app.yaml), waits for its pods,
// and makes real requests from every frontend pod to every web-api pod on another node.
import { readFileSync } from 'node:fs';

import { loadManifests, type KubeObject, type Pod } from '@ciliate/resources';
import { ResourceStore } from '@ciliate/store';
import { connect } from '@nats-io/transport-node';

import { ownFile } from './programs.js';
import { labConnectOptions, labExec, requireLab } from './lab.js';
import { LabError } from './plan.js';
import { waitFor } from './sys.js';
import { TEMPLATE_ANNOTATION } from './workloads.js';

export const DEMO_MANIFEST = ownFile('../demo/app.yaml');
const DEMO_NAMESPACE = 'app';

export interface DemoPod {
  name: string;
  node: string;
  ip: string;
  labels: Record<string, string>;
}

export interface DemoRequest {
  from: string;
  fromNode: string;
  to: string;
  toNode: string;
  url: string;
  ok: boolean;
  answer: string;
}

export interface DemoReport {
  lab: string;
  /** How the nodes' datapath runs (the agent publishes no endpoints, allocates no identities). */
  datapath: 'agent' | 'service';
  pods: DemoPod[];
  endpoints: { name: string; identity: string; ips: string; state: string }[];
  identities: { id: string; labels: string }[];
  requests: DemoRequest[];
}

type Status = { phase?: string; podIP?: string };

export async function runDemo(
  opts: {
    name?: string;
    env?: NodeJS.ProcessEnv;
    progress?: (line: string) => void;
    timeoutMs?: number;
  } = {},
): Promise<DemoReport> {
  const env = opts.env ?? process.env;
  const progress = opts.progress ?? (() => undefined);
  const m = requireLab(opts.name, env);
  const nc = await connect(labConnectOptions(m, 'ciliate-lab-demo'));
  try {
    const store = await ResourceStore.open(nc);
    const objects = loadManifests(
      readFileSync(DEMO_MANIFEST, 'utf8'),
      DEMO_MANIFEST,
    ) as KubeObject[];
    progress(`applying ${objects.length} objects from ${DEMO_MANIFEST}`);
    for (const o of objects) await store.apply(o, { source: 'apply' });
    const templates = objects.filter(
      (o) => o.kind === 'Pod' && (o as Pod).metadata.annotations?.['lab.ciliate.io/replicas'],
    ) as Pod[];
    const want = templates.reduce(
      (n, t) => n + Number(t.metadata.annotations?.['lab.ciliate.io/replicas'] ?? 0),
      0,
    );
    progress(`waiting for ${want} pods to run`);
    const pods = await waitFor(
      'the demo pods to run',
      async () => {
        const list = (await store.list<Pod>('Pod', DEMO_NAMESPACE))
          .map((s) => s.object as Pod & { status?: Status })
          .filter((p) => p.metadata.annotations?.[TEMPLATE_ANNOTATION]);
        const running = list.filter((p) => p.status?.phase === 'Running' && p.status.podIP);
        return running.length >= want ? running : undefined;
      },
      opts.timeoutMs ?? 60_000,
      300,
    );
    const report: DemoReport = {
      lab: m.name,
      datapath: m.datapath,
      pods: pods.map((p) => ({
        name: p.metadata.name ?? '',
        node: p.spec.nodeName ?? '',
        ip: p.status!.podIP!,
        labels: p.metadata.labels ?? {},
      })),
      endpoints: [],
      identities: [],
      requests: [],
    };
    for (const s of await store.list('CiliumEndpoint', DEMO_NAMESPACE)) {
      const st = (s.object as { status?: Record<string, unknown> }).status ?? {};
      const identity = (st.identity ?? {}) as { id?: number };
      const networking = (st.networking ?? {}) as { addressing?: { ipv4?: string }[] };
      report.endpoints.push({
        name: s.object.metadata.name ?? '',
        identity: String(identity.id ?? '-'),
        ips: (networking.addressing ?? []).map((a) => a.ipv4 ?? '').join(','),
        state: typeof st.state === 'string' ? st.state : '-',
      });
    }
    for (const s of await store.list('CiliumIdentity')) {
      const o = s.object as {
        metadata: { name?: string };
        'security-labels'?: Record<string, string>;
      };
      const labels = Object.entries(o['security-labels'] ?? {})
        .filter(([k]) => k.includes(`namespace`) || k.includes(':app'))
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      if (labels.includes(DEMO_NAMESPACE))
        report.identities.push({ id: o.metadata.name ?? '', labels });
    }
    const frontends = report.pods.filter((p) => p.labels.app === 'frontend');
    const apis = report.pods.filter((p) => p.labels.app === 'web-api');
    for (const f of frontends) {
      for (const a of apis.filter((x) => x.node !== f.node)) {
        const url = `http://${a.ip}:8080/`;
        progress(`${f.name} (${f.node}) -> ${a.name} (${a.node}) ${url}`);
        const r = await labExec({
          ...(opts.name ? { name: opts.name } : {}),
          env,
          namespace: DEMO_NAMESPACE,
          pod: f.name,
          cmd: ['curl', '-sS', '-m', '5', url],
          stdio: 'pipe',
        });
        const answer = (r.stdout || r.stderr).trim();
        report.requests.push({
          from: f.name,
          fromNode: f.node,
          to: a.name,
          toNode: a.node,
          url,
          ok: r.code === 0 && answer === a.name,
          answer,
        });
      }
    }
    if (report.requests.length === 0) {
      throw new LabError('failed', 'the demo needs at least 2 nodes to make requests across nodes');
    }
    return report;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
