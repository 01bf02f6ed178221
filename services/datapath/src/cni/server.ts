// The agent's side of the plugin protocol: a unix socket that answers one JSON request per
// connection. Requests run concurrently: the endpoint manager orders requests for the same
// attachment and makes address and endpoint-id choice atomic.
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';

import { asCniError, CniError, CniErrorCode } from './errors.js';
import { runPlugin } from './plugin.js';
import {
  PROTOCOL_VERSION,
  type AgentReply,
  type AgentRequest,
  type PluginInvocation,
} from './protocol.js';
import type { EndpointManager } from '../endpoints/manager.js';

const MAX_REQUEST_BYTES = 1 << 20;

export interface CniServerOptions {
  socketPath: string;
  endpoints: Pick<EndpointManager, 'add' | 'del' | 'check' | 'gc'>;
  /** STATUS: whether ADD can be served (datapath loaded, addresses left). */
  ready: () => Promise<{ ok: true } | { ok: false; code: 50 | 51; msg: string }>;
  /** One structured entry per request (event `cni_request`). */
  log?: (entry: Record<string, unknown>) => void;
}

export interface CniServer {
  readonly socketPath: string;
  /** Handles one request without the socket (tests, and the server itself). */
  handle(req: AgentRequest): Promise<AgentReply>;
  close(): Promise<void>;
}

function need(v: string | undefined, name: string): string {
  if (!v) throw new CniError(CniErrorCode.INVALID_ENVIRONMENT, `${name}: Required value`);
  return v;
}

function isInvocation(r: unknown): r is PluginInvocation {
  return typeof r === 'object' && r !== null && 'invoke' in r;
}

export async function startCniServer(opts: CniServerOptions): Promise<CniServer> {
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.catch(() => undefined).finally(() => inFlight.delete(p));
    return p;
  };

  async function dispatch(req: AgentRequest): Promise<AgentReply> {
    if (req?.v !== PROTOCOL_VERSION) {
      throw new CniError(
        CniErrorCode.INCOMPATIBLE_VERSION,
        `plugin protocol version ${String((req as { v?: unknown } | undefined)?.v)} is not ${String(PROTOCOL_VERSION)}`,
      );
    }
    const ep = opts.endpoints;
    const base = () => ({
      containerId: need(req.containerId, 'CNI_CONTAINERID'),
      ifname: need(req.ifname, 'CNI_IFNAME'),
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
      default:
        throw new CniError(
          CniErrorCode.INVALID_ENVIRONMENT,
          `CNI_COMMAND: Invalid value: ${JSON.stringify((req as { command: unknown }).command)}`,
        );
    }
  }

  async function handle(req: AgentRequest): Promise<AgentReply> {
    const started = performance.now();
    let reply: AgentReply;
    try {
      reply = await dispatch(req);
    } catch (err) {
      const e = asCniError(err);
      reply = {
        ok: false,
        error: { code: e.code, msg: e.message, ...(e.details ? { details: e.details } : {}) },
      };
    }
    opts.log?.({
      subsys: 'cni',
      event: 'cni_request',
      command: req?.command,
      containerId: req?.containerId,
      ifname: req?.ifname,
      ok: reply.ok,
      ...(reply.ok ? {} : { code: reply.error.code, msg: reply.error.msg }),
      ms: Math.round(performance.now() - started),
    });
    return reply;
  }

  /** The plugin core run here, for the native executable (src/cni/shim.c): the same checks and
   * errors as the full plugin (dist/cni/main.js), without starting Node per CNI call. */
  function invoke(inv: PluginInvocation): Promise<{ stdout: string; exitCode: number }> {
    const env = inv.invoke.env;
    const stdin = inv.invoke.stdin;
    if (inv.v !== PROTOCOL_VERSION || typeof stdin !== 'string' || typeof env !== 'object') {
      const e = new CniError(
        CniErrorCode.INCOMPATIBLE_VERSION,
        `plugin protocol version ${String(inv.v)} is not ${String(PROTOCOL_VERSION)}`,
      );
      return Promise.resolve({ stdout: JSON.stringify(e.toJson('1.1.0')) + '\n', exitCode: 1 });
    }
    return runPlugin(env, stdin, (_socketPath, req) => handle(req));
  }

  function onConnection(sock: Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.destroy();
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      sock.pause();
      let req: AgentRequest | PluginInvocation;
      try {
        req = JSON.parse(buf.slice(0, nl)) as AgentRequest | PluginInvocation;
      } catch (err) {
        sock.end(
          JSON.stringify({
            ok: false,
            error: { code: CniErrorCode.DECODE_FAILURE, msg: `request: ${(err as Error).message}` },
          }) + '\n',
        );
        return;
      }
      if (isInvocation(req)) {
        void invoke(req).then((out) => sock.end(`${out.exitCode}\n${out.stdout}`));
        return;
      }
      void handle(req).then((reply) => sock.end(JSON.stringify(reply) + '\n'));
    });
  }

  mkdirSync(dirname(opts.socketPath), { recursive: true, mode: 0o755 });
  rmSync(opts.socketPath, { force: true });
  const server: Server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, () => resolve());
  });
  // only root (the runtime) may ask for pods
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
