// The agent's side of the plugin protocol: a unix socket that answers one JSON request per
// connection. Requests run concurrently: the endpoint manager orders requests for the same
// attachment and makes address and endpoint-id choice atomic. Every request is checked here
// (parseAgentRequest, then CNI_NETNS against the places runtimes use), however it arrived, and
// whatever is written on the socket gets an answer: a line that is too long, never ends or is
// not JSON is refused with a CNI error, counted, and the server goes on serving.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';

import { asCniError, CniError, CniErrorCode } from './errors.js';
import { checkNetns, DEFAULT_NETNS_DIRS } from './netns.js';
import { runPlugin } from './plugin.js';
import {
  PROTOCOL_VERSION,
  type AgentReply,
  type AgentRequest,
  type PluginInvocation,
} from './protocol.js';
import { parseAgentRequest } from './request.js';
import type { EndpointManager } from '../endpoints/manager.js';

/** The longest request line (a config with a large prevResult stays far below). */
export const MAX_REQUEST_BYTES = 1 << 20;
/** How long a client may take to send its request line. */
export const REQUEST_READ_TIMEOUT_MS = 10_000;
/** How long a refused client may keep the connection before it is closed. */
const LINGER_MS = 5_000;

/** Why a request was refused (the `reason` of ciliate_datapath_refused_total{what="cni_request"}). */
export type CniRefusalReason =
  'invalid_request' | 'netns' | 'too_large' | 'malformed_json' | 'read_timeout';

export interface CniServerOptions {
  socketPath: string;
  endpoints: Pick<EndpointManager, 'add' | 'del' | 'check' | 'gc'>;
  /** STATUS: whether ADD can be served (datapath loaded, addresses left). */
  ready: () => Promise<{ ok: true } | { ok: false; code: 50 | 51; msg: string }>;
  /** One structured entry per request (event `cni_request`). */
  log?: (entry: Record<string, unknown>) => void;
  /**
   * The CNI_NETNS check (throws a CniError). Default: checkNetns with the default directories,
   * refusing this process's own namespace.
   */
  checkNetns?: (netns: string, command: 'ADD' | 'CHECK' | 'DEL') => Promise<void>;
  /** Told of every request refused before it reached the endpoints. */
  onRefused?: (reason: CniRefusalReason) => void;
  /** Default REQUEST_READ_TIMEOUT_MS. */
  readTimeoutMs?: number;
}

export interface CniServer {
  readonly socketPath: string;
  /** Handles one decoded request without the socket (tests, and the server itself). */
  handle(req: unknown): Promise<AgentReply>;
  close(): Promise<void>;
}

function isInvocation(r: unknown): r is PluginInvocation {
  return typeof r === 'object' && r !== null && 'invoke' in r;
}

function errorReply(err: unknown): AgentReply {
  const e = asCniError(err);
  return {
    ok: false,
    error: { code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) },
  };
}

/** Listens with a umask that leaves the socket to its owner from the moment it exists. */
function listenPrivate(server: Server, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // bind(2) happens inside listen(), synchronously: only the socket file gets this umask
    const umask = process.umask(0o177);
    try {
      server.listen(path, () => resolve());
    } finally {
      process.umask(umask);
    }
  });
}

export async function startCniServer(opts: CniServerOptions): Promise<CniServer> {
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.catch(() => undefined).finally(() => inFlight.delete(p));
    return p;
  };
  const netnsCheck =
    opts.checkNetns ??
    ((netns: string, command: 'ADD' | 'CHECK' | 'DEL') =>
      checkNetns(netns, command, { dirs: DEFAULT_NETNS_DIRS, forbidden: ['/proc/self/ns/net'] }));
  const refused = (reason: CniRefusalReason) => opts.onRefused?.(reason);

  /** The request checked, or the refusal to answer with. */
  async function admit(input: unknown): Promise<AgentRequest | AgentReply> {
    let req: AgentRequest;
    try {
      req = parseAgentRequest(input);
    } catch (err) {
      refused('invalid_request');
      return errorReply(err);
    }
    if (req.netns && (req.command === 'ADD' || req.command === 'CHECK' || req.command === 'DEL')) {
      try {
        await netnsCheck(req.netns, req.command);
      } catch (err) {
        refused('netns');
        return errorReply(err);
      }
    }
    return req;
  }

  async function dispatch(req: AgentRequest): Promise<AgentReply> {
    const ep = opts.endpoints;
    // parseAgentRequest made sure an ADD, CHECK or DEL names its container and interface
    const base = () => ({
      containerId: req.containerId!,
      ifname: req.ifname!,
      ...(req.netns ? { netns: req.netns } : {}),
      args: req.args,
      config: req.config,
    });
    switch (req.command) {
      case 'ADD':
        return { ok: true, result: await track(ep.add(base())) };
      case 'DEL':
        await track(ep.del(base()));
        return { ok: true };
      case 'CHECK':
        await track(ep.check(base()));
        return { ok: true };
      case 'GC':
        await track(ep.gc(req.config.validAttachments ?? []));
        return { ok: true };
      case 'STATUS': {
        const r = await opts.ready();
        if (!r.ok) throw new CniError(r.code, r.msg);
        return { ok: true };
      }
    }
  }

  async function handle(input: unknown): Promise<AgentReply> {
    const started = performance.now();
    const admitted = await admit(input);
    let reply: AgentReply;
    if ('ok' in admitted) reply = admitted;
    else {
      try {
        reply = await dispatch(admitted);
      } catch (err) {
        reply = errorReply(err);
      }
    }
    const req = (typeof input === 'object' && input !== null ? input : {}) as Partial<
      Record<'command' | 'containerId' | 'ifname', unknown>
    >;
    opts.log?.({
      subsys: 'cni',
      event: 'cni_request',
      command: typeof req.command === 'string' ? req.command.slice(0, 16) : undefined,
      containerId: typeof req.containerId === 'string' ? req.containerId.slice(0, 256) : undefined,
      ifname: typeof req.ifname === 'string' ? req.ifname.slice(0, 32) : undefined,
      ok: reply.ok,
      ...(reply.ok ? {} : { code: reply.error.code, msg: reply.error.msg }),
      ms: Math.round(performance.now() - started),
    });
    return reply;
  }

  /** The plugin core run here, for the native executable (src/cni/shim.c): the same checks and
   * errors as the full plugin (dist/cni/main.js), without starting Node per CNI call. */
  function invoke(inv: PluginInvocation): Promise<{ stdout: string; exitCode: number }> {
    const env = inv.invoke?.env as unknown;
    const stdin = inv.invoke?.stdin as unknown;
    const fail = (e: CniError) =>
      Promise.resolve({ stdout: JSON.stringify(e.toJson('1.1.0')) + '\n', exitCode: 1 });
    if (inv.v !== PROTOCOL_VERSION || typeof stdin !== 'string' || !isPlainObject(env)) {
      refused('invalid_request');
      return fail(
        new CniError(
          CniErrorCode.INCOMPATIBLE_VERSION,
          `plugin protocol version ${String(inv.v)} is not ${String(PROTOCOL_VERSION)}`,
        ),
      );
    }
    const bad = Object.entries(env).find(([, v]) => typeof v !== 'string');
    if (bad) {
      refused('invalid_request');
      return fail(
        new CniError(CniErrorCode.INVALID_ENVIRONMENT, `${bad[0].slice(0, 64)}: must be a string`),
      );
    }
    return runPlugin(env as Record<string, string>, stdin, (_socketPath, req) => handle(req));
  }

  function onConnection(sock: Socket): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    sock.on('error', () => sock.destroy());
    const finish = (text: string) => {
      sock.setTimeout(LINGER_MS, () => sock.destroy());
      sock.end(text);
    };
    const refuse = (reason: CniRefusalReason, code: number, msg: string) => {
      done = true;
      refused(reason);
      // what is still coming is not read: the client gets its answer, then the connection ends
      // (it may be writing still, so it is closed rather than waited for)
      sock.pause();
      sock.end(JSON.stringify({ ok: false, error: { code, msg } }) + '\n', () => sock.destroy());
    };
    sock.setTimeout(opts.readTimeoutMs ?? REQUEST_READ_TIMEOUT_MS, () => {
      if (done) return;
      refuse(
        'read_timeout',
        CniErrorCode.DECODE_FAILURE,
        `request: no complete line within ${opts.readTimeoutMs ?? REQUEST_READ_TIMEOUT_MS} ms`,
      );
    });
    sock.on('data', (d: Buffer) => {
      if (done) return;
      const nl = d.indexOf(10);
      const take = nl < 0 ? d.length : nl;
      if (size + take > MAX_REQUEST_BYTES) {
        refuse(
          'too_large',
          CniErrorCode.DECODE_FAILURE,
          `request: longer than ${MAX_REQUEST_BYTES} bytes`,
        );
        return;
      }
      size += take;
      chunks.push(nl < 0 ? d : d.subarray(0, nl));
      if (nl < 0) return;
      done = true;
      sock.setTimeout(0);
      sock.pause();
      let req: unknown;
      try {
        req = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
      } catch (err) {
        refused('malformed_json');
        finish(
          JSON.stringify({
            ok: false,
            error: { code: CniErrorCode.DECODE_FAILURE, msg: `request: ${(err as Error).message}` },
          }) + '\n',
        );
        return;
      }
      if (isInvocation(req)) {
        void invoke(req).then((out) => finish(`${out.exitCode}\n${out.stdout}`));
        return;
      }
      void handle(req).then((reply) => finish(JSON.stringify(reply) + '\n'));
    });
  }

  // only root (the runtime) may ask for pods: a directory we create is ours alone
  mkdirSync(dirname(opts.socketPath), { recursive: true, mode: 0o700 });
  rmSync(opts.socketPath, { force: true });
  const server: Server = createServer(onConnection);
  await listenPrivate(server, opts.socketPath);
  chmodSync(opts.socketPath, 0o600);

  return {
    socketPath: opts.socketPath,
    handle,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.allSettled([...inFlight]);
      rmSync(opts.socketPath, { force: true });
    },
  };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
