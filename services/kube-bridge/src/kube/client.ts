// A thin Kubernetes API client: @kubernetes/client-node loads the kubeconfig (files, in-cluster
// service account, exec and token plugins) and says how to authenticate; the requests themselves
// go through node:https on one keep-alive agent. The bridge needs exact control over what the
// generated clients hide: list pages and their resourceVersion, watch bookmarks and `410 Gone`,
// JSON patches on status subresources, and the status code of every request (a 403 must be
// visible, counted per verb and resource, to keep the RBAC role exact).
import { Agent, request, type RequestOptions } from 'node:https';
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
} from 'node:http';

import { KubeConfig } from '@kubernetes/client-node';

export class KubeApiError extends Error {
  readonly code = 'kube_api_error';
  constructor(
    readonly verb: string,
    readonly path: string,
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(`${verb} ${path}: ${status} ${reason}: ${message}`);
    this.name = 'KubeApiError';
  }
}

/**
 * Which configuration to use: a kubeconfig file, or the pod's service account (token, CA and
 * namespace under `root`/var/run/secrets/kubernetes.io/serviceaccount, the API server from
 * KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT).
 */
export type KubeConfigSource = { kubeconfig: string } | { inCluster: true; root?: string };

export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  if ('kubeconfig' in source) kc.loadFromFile(source.kubeconfig);
  else kc.loadFromCluster(source.root && source.root !== '/' ? source.root.replace(/\/$/, '') : '');
  if (!kc.getCurrentCluster()) {
    throw new Error('the kubeconfig has no current cluster (check current-context)');
  }
  return kc;
}

export interface KubeList<T> {
  items: T[];
  resourceVersion: string;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: Record<string, unknown>;
}

export interface WatchStream {
  /** Resolves when the server ends the watch (timeout) or rejects on a transport error. */
  readonly ended: Promise<void>;
  stop(): void;
}

/** One request as the bridge saw it: for metrics and the RBAC audit. */
export interface RequestRecord {
  verb: string;
  /** `services`, `services/status`, `ciliumnodes.cilium.io`, `leases.coordination.k8s.io`. */
  resource: string;
  status: number;
}

export interface KubeClientOptions {
  onRequest?: (r: RequestRecord) => void;
  /** Per request, except watches. */
  timeoutMs?: number;
}

interface Target {
  base: URL;
  tls: RequestOptions;
}

interface PathParts {
  group: string;
  resource: string;
  /** Whether the path names one object (or a subresource of one) rather than a collection. */
  named: boolean;
  subresource: string;
}

function parsePath(path: string): PathParts | undefined {
  const segs = path.split('?')[0]!.split('/').filter(Boolean);
  let group = '';
  let rest: string[];
  if (segs[0] === 'api') rest = segs.slice(2);
  else if (segs[0] === 'apis') {
    group = segs[1] ?? '';
    rest = segs.slice(3);
  } else return undefined;
  // `namespaces/NS/...` scopes what follows; `namespaces` or `namespaces/NAME` is the kind itself.
  if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
  return {
    group,
    resource: rest[0] ?? '',
    named: rest.length >= 2,
    subresource: rest[2] ?? '',
  };
}

/** The RBAC resource a path names: `/api/v1/namespaces/x/services/y/status` -> services/status. */
export function rbacResource(path: string): string {
  const p = parsePath(path);
  if (!p) return path.split('?')[0]!;
  return `${p.resource}${p.group ? `.${p.group}` : ''}${p.subresource ? `/${p.subresource}` : ''}`;
}

/** The RBAC verb of a request (what `kubectl auth can-i` names). */
export function rbacVerb(method: string, path: string): string {
  const named = parsePath(path)?.named ?? false;
  const watch = new URLSearchParams(path.split('?')[1] ?? '').get('watch');
  switch (method) {
    case 'GET':
      if (watch === '1' || watch === 'true') return 'watch';
      return named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return method.toLowerCase();
  }
}

export class KubeClient {
  private agent: Agent | HttpAgent | undefined;
  private agentKey = '';

  constructor(
    readonly kc: KubeConfig,
    private readonly opts: KubeClientOptions = {},
  ) {}

  get server(): string {
    return this.kc.getCurrentCluster()!.server;
  }

  /** Authentication is re-applied per request: tokens from files and exec plugins rotate. */
  private async target(): Promise<Target> {
    const tls: RequestOptions = {};
    await this.kc.applyToHTTPSOptions(tls);
    const base = new URL(this.server);
    // client-node makes a fresh agent per call; one keep-alive agent per TLS identity instead,
    // or every request would pay a TLS handshake.
    const key = [tls.ca, tls.cert, tls.key, tls.rejectUnauthorized, tls.servername]
      .map((v) =>
        v === undefined ? '' : Buffer.isBuffer(v) ? v.toString('base64') : JSON.stringify(v),
      )
      .join('|');
    if (!this.agent || key !== this.agentKey) {
      this.agent?.destroy();
      const agentOpts = {
        keepAlive: true,
        maxSockets: 32,
        ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
        ...(tls.key !== undefined ? { key: tls.key } : {}),
        ...(tls.rejectUnauthorized !== undefined
          ? { rejectUnauthorized: tls.rejectUnauthorized }
          : {}),
        ...(tls.servername !== undefined ? { servername: tls.servername } : {}),
      };
      this.agent = base.protocol === 'http:' ? new HttpAgent(agentOpts) : new Agent(agentOpts);
      this.agentKey = key;
    }
    return { base, tls };
  }

  private async open(
    method: string,
    path: string,
    body: unknown,
    contentType: string,
    timeoutMs: number | undefined,
  ): Promise<IncomingMessage & { req: ClientRequest }> {
    const { base, tls } = await this.target();
    const url = new URL(path, base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(tls.headers as Record<string, string> | undefined),
    };
    if (tls.auth) headers.authorization = `Basic ${Buffer.from(tls.auth).toString('base64')}`;
    if (payload) {
      headers['content-type'] = contentType;
      headers['content-length'] = String(payload.length);
    }
    const send = url.protocol === 'http:' ? httpRequest : request;
    return new Promise((resolve, reject) => {
      const req = send(url, { method, headers, agent: this.agent }, (res) =>
        resolve(Object.assign(res, { req })),
      );
      if (timeoutMs !== undefined) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
      }
      req.on('error', reject);
      req.end(payload);
    });
  }

  private record(method: string, path: string, status: number): void {
    this.opts.onRequest?.({
      verb: rbacVerb(method, path),
      resource: rbacResource(path),
      status,
    });
  }

  /** One request; a status of 300 or more throws a KubeApiError. */
  async request<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<T> {
    let res;
    try {
      res = await this.open(method, path, body, contentType, this.opts.timeoutMs ?? 30_000);
    } catch (err) {
      this.record(method, path, 0);
      throw err;
    }
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const status = res.statusCode ?? 0;
    this.record(method, path, status);
    if (status >= 300) throw apiError(method, path, status, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** Every object of a collection, page by page; the resourceVersion to watch from. */
  async list<T>(path: string, pageSize = 500): Promise<KubeList<T>> {
    const items: T[] = [];
    let cont = '';
    let resourceVersion = '';
    for (;;) {
      const q = new URLSearchParams({ limit: String(pageSize) });
      if (cont) q.set('continue', cont);
      const page = await this.request<{
        items?: T[];
        metadata?: { resourceVersion?: string; continue?: string };
      }>('GET', `${path}?${q.toString()}`);
      items.push(...(page.items ?? []));
      // The list's resourceVersion is the one of its first page (the snapshot every page is from).
      resourceVersion ||= page.metadata?.resourceVersion ?? '';
      cont = page.metadata?.continue ?? '';
      if (!cont) return { items, resourceVersion };
    }
  }

  /**
   * Watches a collection from `resourceVersion`, with bookmarks. Events are delivered in order;
   * an ERROR event (e.g. 410 Gone: the version is too old) is delivered like any other.
   */
  async watch(
    path: string,
    resourceVersion: string,
    onEvent: (ev: WatchEvent) => void,
    opts: { timeoutSeconds?: number } = {},
  ): Promise<WatchStream> {
    const q = new URLSearchParams({
      watch: '1',
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(opts.timeoutSeconds ?? 300),
    });
    if (resourceVersion) q.set('resourceVersion', resourceVersion);
    const full = `${path}?${q.toString()}`;
    let res;
    try {
      res = await this.open('GET', full, undefined, '', undefined);
    } catch (err) {
      this.record('GET', full, 0);
      throw err;
    }
    const status = res.statusCode ?? 0;
    this.record('GET', full, status);
    if (status >= 300) {
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      throw apiError('GET', full, status, Buffer.concat(chunks).toString('utf8'));
    }
    const response = res;
    let stopped = false;
    const ended = (async () => {
      let buf = '';
      try {
        for await (const chunk of response) {
          buf += (chunk as Buffer).toString('utf8');
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (line) onEvent(JSON.parse(line) as WatchEvent);
          }
        }
      } catch (err) {
        if (!stopped) throw err;
      }
    })();
    return {
      ended,
      stop: () => {
        stopped = true;
        response.req.destroy();
        response.destroy();
      },
    };
  }

  close(): void {
    this.agent?.destroy();
    this.agent = undefined;
  }
}

function apiError(method: string, path: string, status: number, text: string): KubeApiError {
  let reason = '';
  let message = text.trim().slice(0, 500);
  try {
    const s = JSON.parse(text) as { reason?: string; message?: string };
    reason = s.reason ?? '';
    message = s.message ?? message;
  } catch {
    // not a Status object; the text is the message
  }
  return new KubeApiError(method, path.split('?')[0]!, status, reason, message);
}
