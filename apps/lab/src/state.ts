// A lab's state on disk: ~/.local/state/ciliate/labs/<name>/ with lab.json, the manifest of
// everything the lab made. Each resource is written to the manifest before it is created, so a
// lab interrupted at any point (a crash, Ctrl-C) is still removed completely by `lab down`.
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import type { LabPlan } from './plan.js';
import type { ProcessRecord } from './sys.js';

export type LabPhase = 'creating' | 'up' | 'deleting';

export interface ManagedProcess extends ProcessRecord {
  /** Service name as `lab logs` takes it: nats, identity, ipam, datapath, kubelet. */
  service: string;
  node?: string;
  argv: string[];
  /** Variables set on top of the lab's environment (re-used on a restart). */
  env: Record<string, string>;
  logFile: string;
}

export interface LabManifest {
  version: 1;
  name: string;
  createdAt: string;
  phase: LabPhase;
  plan: LabPlan;
  natsPort: number;
  natsUrl: string;
  /**
   * Where the lab's NATS credentials are (CA, server certificate, each component's nkey and
   * certificate); absent for a lab started with --plaintext.
   */
  securityDir?: string;
  /** How the nodes' datapath runs: the standalone agent or the datapath service. */
  datapath: 'agent' | 'service';
  netns: string[];
  pinDirs: string[];
  processes: ManagedProcess[];
}

/** Set on every process of a lab (the kubelet passes it on to pods): `down` finds strays by it. */
export const LAB_ENV = 'CILIATE_LAB';

export function stateRoot(env: NodeJS.ProcessEnv = process.env): string {
  return env.CILIATE_STATE ?? join(homedir(), '.local', 'state', 'ciliate');
}

export function labsRoot(env: NodeJS.ProcessEnv = process.env): string {
  return join(stateRoot(env), 'labs');
}

export function labDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(labsRoot(env), name);
}

export function manifestFile(dir: string): string {
  return join(dir, 'lab.json');
}

export function readManifest(dir: string): LabManifest | undefined {
  try {
    return JSON.parse(readFileSync(manifestFile(dir), 'utf8')) as LabManifest;
  } catch {
    return undefined;
  }
}

export function writeManifest(dir: string, m: LabManifest): void {
  mkdirSync(dir, { recursive: true });
  const tmp = `${manifestFile(dir)}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(m, null, 2) + '\n');
  renameSync(tmp, manifestFile(dir));
}

/** Every lab with a state directory, with its manifest when it has one. */
export function listLabs(
  env: NodeJS.ProcessEnv = process.env,
): { name: string; dir: string; manifest: LabManifest | undefined }[] {
  let names: string[] = [];
  try {
    names = readdirSync(labsRoot(env));
  } catch {
    return [];
  }
  return names.sort().map((name) => {
    const dir = labDir(name, env);
    return { name, dir, manifest: readManifest(dir) };
  });
}

export function logFile(dir: string, service: string, node?: string): string {
  return join(dir, 'logs', node ? `${service}-${node}.log` : `${service}.log`);
}

// ---------------------------------------------------------------------------------------------
// Pods: one record per pod the kubelet set up, written by the kubelet only.

export interface PodRecord {
  namespace: string;
  name: string;
  uid: string;
  node: string;
  netns: string;
  containerId: string;
  ip?: string;
  /** The ADD result, handed to DEL as prevResult (what libcni caches). */
  cniResult?: unknown;
  process?: ProcessRecord & { argv: string[] };
  logFile: string;
}

export function podsDir(dir: string): string {
  return join(dir, 'pods');
}

export function podRecordFile(dir: string, namespace: string, name: string): string {
  return join(podsDir(dir), `${namespace}_${name}.json`);
}

export function readPodRecords(dir: string): PodRecord[] {
  let files: string[] = [];
  try {
    files = readdirSync(podsDir(dir)).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: PodRecord[] = [];
  for (const f of files) {
    try {
      out.push(JSON.parse(readFileSync(join(podsDir(dir), f), 'utf8')) as PodRecord);
    } catch {
      // a torn write: the namespace prefix sweep still finds what it made
    }
  }
  return out;
}

export function writePodRecord(dir: string, rec: PodRecord): void {
  mkdirSync(podsDir(dir), { recursive: true });
  const file = podRecordFile(dir, rec.namespace, rec.name);
  writeFileSync(`${file}.tmp`, JSON.stringify(rec, null, 2) + '\n');
  renameSync(`${file}.tmp`, file);
}
