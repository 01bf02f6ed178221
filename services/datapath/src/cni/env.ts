// The CNI environment (spec 1.1.0 "Parameters"): which variables each command needs, and their
// validation as the reference skel library does it. Errors are code 4 and name the variable.
import { CniError, CniErrorCode, invalidEnv } from './errors.js';

export const CNI_COMMANDS = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'] as const;
export type CniCommand = (typeof CNI_COMMANDS)[number];

/** Keys of CNI_ARGS that we understand; others need IgnoreUnknown=1. */
export const KNOWN_CNI_ARGS = [
  'IgnoreUnknown',
  'K8S_POD_NAMESPACE',
  'K8S_POD_NAME',
  'K8S_POD_INFRA_CONTAINER_ID',
  'K8S_POD_UID',
] as const;

export interface CniArgs {
  ignoreUnknown: boolean;
  podNamespace?: string;
  podName?: string;
  podUid?: string;
  infraContainerId?: string;
  /** Every pair as given, including unknown ones that IgnoreUnknown let through. */
  raw: Record<string, string>;
}

export interface CniEnv {
  command: CniCommand;
  containerId?: string;
  /** Path of the container's network namespace (absent on DEL when the runtime lost it). */
  netns?: string;
  ifname?: string;
  /** Directories searched for plugins, from CNI_PATH. */
  path: string[];
  args: CniArgs;
}

const REQUIRED: Record<CniCommand, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: ['CNI_PATH'],
  VERSION: [],
};

// Container IDs and network names share this charset in the spec.
const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function validContainerId(id: string): string | undefined {
  if (id === '') return 'must not be empty';
  if (!ID_RE.test(id)) {
    return 'must start with a letter or digit and contain only letters, digits, "_", "." or "-"';
  }
  return undefined;
}

export function validIfname(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if (name.length > 15) return 'must be at most 15 characters';
  if (name === '.' || name === '..') return 'must not be "." or ".."';
  if (/[/:\s]/.test(name)) return 'must not contain "/", ":" or whitespace';
  return undefined;
}

/** Parses CNI_ARGS ("K=V;K2=V2"). Unknown keys are code 2 unless IgnoreUnknown is set. */
export function parseCniArgs(text: string | undefined): CniArgs {
  const raw: Record<string, string> = {};
  if (text !== undefined && text !== '') {
    for (const pair of text.split(';')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) {
        throw invalidEnv('CNI_ARGS', text, `pair ${JSON.stringify(pair)} is not KEY=VALUE`);
      }
      raw[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  const ignore = raw.IgnoreUnknown;
  const ignoreUnknown = ignore !== undefined && ['1', 'true', 'True', 'TRUE'].includes(ignore);
  if (!ignoreUnknown) {
    for (const [k, v] of Object.entries(raw)) {
      if (!(KNOWN_CNI_ARGS as readonly string[]).includes(k)) {
        throw new CniError(
          CniErrorCode.UNSUPPORTED_FIELD,
          `CNI_ARGS: unsupported key ${JSON.stringify(k)} (value ${JSON.stringify(v)}); set IgnoreUnknown=1 to ignore it`,
        );
      }
    }
  }
  const args: CniArgs = { ignoreUnknown, raw };
  if (raw.K8S_POD_NAMESPACE) args.podNamespace = raw.K8S_POD_NAMESPACE;
  if (raw.K8S_POD_NAME) args.podName = raw.K8S_POD_NAME;
  if (raw.K8S_POD_UID) args.podUid = raw.K8S_POD_UID;
  if (raw.K8S_POD_INFRA_CONTAINER_ID) args.infraContainerId = raw.K8S_POD_INFRA_CONTAINER_ID;
  return args;
}

/**
 * Reads and validates the CNI_* variables for the command. Missing variables are reported
 * together, each by name, in one code-4 error.
 */
export function parseCniEnv(env: Readonly<Record<string, string | undefined>>): CniEnv {
  const command = env.CNI_COMMAND;
  if (command === undefined || command === '') {
    throw invalidEnv(
      'CNI_COMMAND',
      undefined,
      'Required value: must be one of ' + CNI_COMMANDS.join(', '),
    );
  }
  if (!(CNI_COMMANDS as readonly string[]).includes(command)) {
    throw invalidEnv('CNI_COMMAND', command, `must be one of ${CNI_COMMANDS.join(', ')}`);
  }
  const cmd = command as CniCommand;
  const missing = REQUIRED[cmd].filter((v) => env[v] === undefined || env[v] === '');
  if (missing.length > 0) {
    throw new CniError(
      CniErrorCode.INVALID_ENVIRONMENT,
      `${missing.join(', ')}: Required value: ${cmd} needs ${missing.length === 1 ? 'this variable' : 'these variables'}`,
    );
  }
  const out: CniEnv = {
    command: cmd,
    path: (env.CNI_PATH ?? '').split(':').filter((p) => p !== ''),
    args: parseCniArgs(cmd === 'VERSION' ? undefined : env.CNI_ARGS),
  };
  if (cmd === 'VERSION' || cmd === 'GC' || cmd === 'STATUS') return out;
  return {
    ...out,
    ...checkAttachment(cmd, {
      containerId: env.CNI_CONTAINERID,
      ifname: env.CNI_IFNAME,
      netns: env.CNI_NETNS,
    }),
  };
}

/** The attachment a command names, as the variables that carry it. */
export interface CniAttachment {
  containerId?: string;
  ifname?: string;
  netns?: string;
}

const ATTACHMENT_VARS = [
  ['containerId', 'CNI_CONTAINERID'],
  ['ifname', 'CNI_IFNAME'],
  ['netns', 'CNI_NETNS'],
] as const;

/**
 * Checks CNI_CONTAINERID, CNI_IFNAME and CNI_NETNS of an ADD, CHECK or DEL (GC, STATUS and
 * VERSION name no attachment: none is returned). One check for the plugin's environment and
 * for a request that reached the agent some other way; errors are code 4 naming the variable.
 */
export function checkAttachment(
  command: CniCommand,
  given: { containerId?: unknown; ifname?: unknown; netns?: unknown },
): CniAttachment {
  if (command === 'VERSION' || command === 'GC' || command === 'STATUS') return {};
  const missing = ATTACHMENT_VARS.filter(
    ([field, variable]) =>
      REQUIRED[command].includes(variable) && (given[field] === undefined || given[field] === ''),
  ).map(([, variable]) => variable);
  if (missing.length > 0) {
    throw new CniError(
      CniErrorCode.INVALID_ENVIRONMENT,
      `${missing.join(', ')}: Required value: ${command} needs ${missing.length === 1 ? 'this variable' : 'these variables'}`,
    );
  }
  for (const [field, variable] of ATTACHMENT_VARS) {
    const v = given[field];
    if (v !== undefined && typeof v !== 'string')
      throw invalidEnv(variable, String(JSON.stringify(v)), 'must be a string');
  }
  const out: CniAttachment = {};
  const containerId = given.containerId as string;
  const idProblem = validContainerId(containerId);
  if (idProblem) throw invalidEnv('CNI_CONTAINERID', containerId, idProblem);
  out.containerId = containerId;

  const ifname = given.ifname as string;
  const ifProblem = validIfname(ifname);
  if (ifProblem) throw invalidEnv('CNI_IFNAME', ifname, ifProblem);
  out.ifname = ifname;

  const netns = given.netns as string | undefined;
  if (netns !== undefined && netns !== '') {
    if (!netns.startsWith('/')) throw invalidEnv('CNI_NETNS', netns, 'must be an absolute path');
    out.netns = netns;
  }
  return out;
}
