// The ADD result (spec "Success"), built from what the agent wired, merged into a prevResult
// when one is given (a plugin must pass on, never drop, what came before it), and rendered in
// the format of the request's spec version.

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  /** Netns path for an interface inside the container; absent for host interfaces. */
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface CniIpConfig {
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
  /** Only in 0.3.x results. */
  version?: '4' | '6';
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: CniDns;
}

/** What the agent made for one attachment. */
export interface EndpointWiring {
  hostIfname: string;
  hostMac: string;
  ifname: string;
  mac: string;
  mtu: number;
  netns: string;
  /** CIDR form, e.g. 10.0.1.5/32. */
  address: string;
  gateway: string;
}

/** Builds our part of the result and appends it to prevResult's (indexes shifted). */
export function buildAddResult(
  cniVersion: string,
  wiring: EndpointWiring,
  prev?: CniResult,
  dns?: CniDns,
): CniResult {
  const interfaces: CniInterface[] = [...(prev?.interfaces ?? [])];
  const base = interfaces.length;
  interfaces.push({ name: wiring.hostIfname, mac: wiring.hostMac, mtu: wiring.mtu, sandbox: '' });
  interfaces.push({
    name: wiring.ifname,
    mac: wiring.mac,
    mtu: wiring.mtu,
    sandbox: wiring.netns,
  });
  const ips: CniIpConfig[] = [
    ...(prev?.ips ?? []),
    { address: wiring.address, gateway: wiring.gateway, interface: base + 1 },
  ];
  const routes: CniRoute[] = [...(prev?.routes ?? [])];
  if (!routes.some((r) => r.dst === '0.0.0.0/0')) {
    routes.push({ dst: '0.0.0.0/0', gw: wiring.gateway });
  }
  const result: CniResult = { cniVersion, interfaces, ips, routes };
  const mergedDns = { ...(prev?.dns ?? {}), ...(dns ?? {}) };
  if (Object.keys(mergedDns).length > 0) result.dns = mergedDns;
  return formatResult(result, cniVersion);
}

/** Renders a result in the given spec version: 0.3.x carries `version` per IP, later ones not;
 * empty host `sandbox` fields are left out as the reference plugins do. */
export function formatResult(result: CniResult, cniVersion: string): CniResult {
  const old = cniVersion.startsWith('0.');
  const out: CniResult = { cniVersion };
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => {
      const c: CniInterface = { ...i };
      if (c.sandbox === '') delete c.sandbox;
      return c;
    });
  }
  if (result.ips) {
    out.ips = result.ips.map((ip) => {
      const c: CniIpConfig = { ...ip };
      if (old) c.version = ip.address.includes(':') ? '6' : '4';
      else delete c.version;
      return c;
    });
  }
  if (result.routes) out.routes = result.routes.map((r) => ({ ...r }));
  if (result.dns) out.dns = { ...result.dns };
  return out;
}
