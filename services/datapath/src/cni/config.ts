// The network configuration a runtime writes to the plugin's stdin: validated field by field,
// errors with the spec's codes (1 version, 2 unsupported field, 6 decode, 7 invalid config)
// naming the field.
import { CniError, CniErrorCode, invalidConfig } from './errors.js';
import { validContainerId } from './env.js';
import type { CniDns, CniResult } from './result.js';
import { CURRENT_VERSION, isSupportedVersion, SUPPORTED_VERSIONS } from './version.js';

export const DEFAULT_SOCKET_PATH = '/var/run/ciliate/cni.sock';

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

export interface NetConf {
  cniVersion: string;
  name: string;
  type: string;
  /** Unix socket of the node agent. */
  socketPath: string;
  /** MTU of both veth ends (default: the agent's). */
  mtu?: number;
  dns?: CniDns;
  prevResult?: CniResult;
  runtimeConfig: Record<string, unknown>;
  /** GC: attachments still in use (`cni.dev/valid-attachments`, or the legacy
   * `cni.dev/attachments`). */
  validAttachments?: ValidAttachment[];
  /** The document as given, for the agent and for delegation. */
  raw: Record<string, unknown>;
}

/** Top-level keys we read; anything else not in IGNORED is refused with code 2. */
const KNOWN = new Set([
  'cniVersion',
  'name',
  'type',
  'socketPath',
  'mtu',
  'dns',
  'prevResult',
  'runtimeConfig',
  'capabilities',
  'args',
  'cni.dev/valid-attachments',
  'cni.dev/attachments',
]);
/** Conflist-level keys some runtimes copy into each plugin's config. */
const IGNORED = new Set([
  'cniVersions',
  'disableCheck',
  'disableGC',
  'loadOnlyInlinedPlugins',
  'logLevel',
  'logFile',
]);
/** Capabilities we do not implement; getting them means the config declared them. */
const REFUSED_RUNTIME_CONFIG = ['ips', 'mac', 'ipRanges', 'infinibandGUID', 'deviceID'];

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, path: string): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) {
    throw invalidConfig(path, v, 'must be a list of strings');
  }
  return v as string[];
}

function parseDns(v: unknown, path: string): CniDns {
  if (!isObject(v)) throw invalidConfig(path, v, 'must be an object');
  const dns: CniDns = {};
  if (v.nameservers !== undefined)
    dns.nameservers = stringList(v.nameservers, `${path}.nameservers`);
  if (v.search !== undefined) dns.search = stringList(v.search, `${path}.search`);
  if (v.options !== undefined) dns.options = stringList(v.options, `${path}.options`);
  if (v.domain !== undefined) {
    if (typeof v.domain !== 'string')
      throw invalidConfig(`${path}.domain`, v.domain, 'must be a string');
    dns.domain = v.domain;
  }
  return dns;
}

/** A prevResult: only its shape is checked, the content belongs to the plugins before us. */
export function parsePrevResult(v: unknown, path = 'prevResult'): CniResult {
  if (!isObject(v)) throw invalidConfig(path, v, 'must be an object');
  for (const k of ['interfaces', 'ips', 'routes'] as const) {
    if (v[k] !== undefined && !Array.isArray(v[k])) {
      throw invalidConfig(`${path}.${k}`, v[k], 'must be a list');
    }
  }
  const ips = (v.ips as unknown[] | undefined) ?? [];
  ips.forEach((ip, i) => {
    if (!isObject(ip) || typeof ip.address !== 'string') {
      throw invalidConfig(
        `${path}.ips[${i}].address`,
        isObject(ip) ? ip.address : ip,
        'must be a CIDR string',
      );
    }
  });
  const ifs = (v.interfaces as unknown[] | undefined) ?? [];
  ifs.forEach((iface, i) => {
    if (!isObject(iface) || typeof iface.name !== 'string') {
      throw invalidConfig(
        `${path}.interfaces[${i}].name`,
        isObject(iface) ? iface.name : iface,
        'must be a string',
      );
    }
  });
  return v as unknown as CniResult;
}

function parseAttachments(v: unknown, path: string): ValidAttachment[] {
  if (!Array.isArray(v)) throw invalidConfig(path, v, 'must be a list of {containerID, ifname}');
  return v.map((a: unknown, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw invalidConfig(`${path}[${i}]`, a, 'must be {containerID, ifname}');
    }
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

/**
 * Parses the config from stdin for a command. VERSION reads only `cniVersion` (and accepts an
 * empty stdin); every other command needs a full, valid config.
 */
export function parseNetConf(stdin: string, command: string): NetConf {
  let doc: unknown;
  if (command === 'VERSION' && stdin.trim() === '') doc = {};
  else {
    try {
      doc = JSON.parse(stdin);
    } catch (err) {
      throw new CniError(
        CniErrorCode.DECODE_FAILURE,
        `network config on stdin: not valid JSON: ${(err as Error).message}`,
      );
    }
  }
  if (!isObject(doc)) {
    throw new CniError(
      CniErrorCode.DECODE_FAILURE,
      'network config on stdin: must be a JSON object',
    );
  }
  return netConfOf(doc, command);
}

/**
 * Checks a decoded config for a command: the one check of a config whether it came on the
 * plugin's stdin or in a request that reached the agent some other way.
 */
export function netConfOf(doc: Record<string, unknown>, command: string): NetConf {
  const version = doc.cniVersion;
  if (command === 'VERSION') {
    return {
      cniVersion: typeof version === 'string' && version !== '' ? version : CURRENT_VERSION,
      name: '',
      type: '',
      socketPath: DEFAULT_SOCKET_PATH,
      runtimeConfig: {},
      raw: doc,
    };
  }
  if (version === undefined || version === '') {
    throw invalidConfig('cniVersion', undefined, 'Required value');
  }
  if (typeof version !== 'string') throw invalidConfig('cniVersion', version, 'must be a string');
  if (!isSupportedVersion(version)) {
    throw new CniError(
      CniErrorCode.INCOMPATIBLE_VERSION,
      `cniVersion: Unsupported value: ${JSON.stringify(version)}: supported versions are ${SUPPORTED_VERSIONS.join(', ')}`,
    );
  }

  if (doc.name === undefined || doc.name === '')
    throw invalidConfig('name', undefined, 'Required value');
  if (typeof doc.name !== 'string') throw invalidConfig('name', doc.name, 'must be a string');
  const nameProblem = validContainerId(doc.name);
  if (nameProblem) throw invalidConfig('name', doc.name, nameProblem);

  if (doc.type === undefined || doc.type === '')
    throw invalidConfig('type', undefined, 'Required value');
  if (typeof doc.type !== 'string') throw invalidConfig('type', doc.type, 'must be a string');

  for (const [k, v] of Object.entries(doc)) {
    if (KNOWN.has(k) || IGNORED.has(k)) continue;
    throw new CniError(
      CniErrorCode.UNSUPPORTED_FIELD,
      `${k}: Unsupported field: ${JSON.stringify(v)}${k === 'ipam' ? ': addresses come from the node agent, not a delegated IPAM plugin' : ''}`,
    );
  }

  const conf: NetConf = {
    cniVersion: version,
    name: doc.name,
    type: doc.type,
    socketPath: DEFAULT_SOCKET_PATH,
    runtimeConfig: {},
    raw: doc,
  };
  if (doc.socketPath !== undefined) {
    if (typeof doc.socketPath !== 'string' || !doc.socketPath.startsWith('/')) {
      throw invalidConfig('socketPath', doc.socketPath, 'must be an absolute path');
    }
    conf.socketPath = doc.socketPath;
  }
  if (doc.mtu !== undefined) {
    if (
      typeof doc.mtu !== 'number' ||
      !Number.isInteger(doc.mtu) ||
      doc.mtu < 576 ||
      doc.mtu > 65535
    ) {
      throw invalidConfig('mtu', doc.mtu, 'must be an integer 576-65535');
    }
    conf.mtu = doc.mtu;
  }
  if (doc.dns !== undefined) conf.dns = parseDns(doc.dns, 'dns');
  if (doc.prevResult !== undefined && doc.prevResult !== null) {
    conf.prevResult = parsePrevResult(doc.prevResult);
  }
  if (doc.runtimeConfig !== undefined) {
    if (!isObject(doc.runtimeConfig)) {
      throw invalidConfig('runtimeConfig', doc.runtimeConfig, 'must be an object');
    }
    for (const k of REFUSED_RUNTIME_CONFIG) {
      if (doc.runtimeConfig[k] !== undefined) {
        throw new CniError(
          CniErrorCode.UNSUPPORTED_FIELD,
          `runtimeConfig.${k}: Unsupported value: ${JSON.stringify(doc.runtimeConfig[k])}: the capability "${k}" is not implemented`,
        );
      }
    }
    conf.runtimeConfig = doc.runtimeConfig;
  }
  if (command === 'GC') {
    const key =
      doc['cni.dev/valid-attachments'] !== undefined
        ? 'cni.dev/valid-attachments'
        : 'cni.dev/attachments';
    // Without the list, every attachment would look stale: refuse rather than remove them all.
    if (doc[key] === undefined) {
      throw invalidConfig('cni.dev/valid-attachments', undefined, 'Required value for GC');
    }
    conf.validAttachments = parseAttachments(doc[key], key);
  }
  return conf;
}
