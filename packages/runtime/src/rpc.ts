// Request/reply over NATS with validation at both ends, typed errors in the micro service error
// headers, metrics per endpoint, and W3C trace context in the headers.
import {
  CiliateError,
  WireErrorSchema,
  asCiliateError,
  errorCodes,
  isErrorCode,
  nodeOfEndpointSubject,
  parseWire,
} from '@ciliate/contracts';
import {
  NoRespondersError,
  TimeoutError,
  headers,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import type { Service, ServiceMsg } from '@nats-io/services';
import type { z } from 'zod';

import type { Logger } from './log.js';
import type { RuntimeMetrics } from './metrics.js';
import { context, trace } from '@opentelemetry/api';

import { SpanKind, extractContext, inSpan, injectContext, type Tracing } from './tracing.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ERROR_HEADER = 'Nats-Service-Error';
const ERROR_CODE_HEADER = 'Nats-Service-Error-Code';

function decodeJson(data: Uint8Array, what: string): unknown {
  if (data.length === 0) return undefined;
  try {
    return JSON.parse(decoder.decode(data)) as unknown;
  } catch (err) {
    throw new CiliateError('bad_request', `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

export interface EndpointDefinition<Req extends z.ZodType, Res extends z.ZodType> {
  /** Endpoint name inside the micro service (one subject token). */
  name: string;
  subject: string;
  request: Req;
  reply: Res;
  /** Queue group; the default spreads requests over instances, '' sends each to every one. */
  queue?: string;
  /**
   * The subject is a node-scoped one for every node (subjects.nodeEndpointAll): the handler gets
   * the subject's node, and a request whose `node` field names another node is refused
   * (`forbidden`, field `node`) before the handler runs. A missing `node` is the subject's.
   */
  nodeScoped?: boolean;
  handler: (
    req: z.output<Req>,
    meta: { msg: Msg; node?: string },
  ) => Promise<z.input<Res>> | z.input<Res>;
}

/**
 * The node a node-scoped request acts for: the subject's, which its `node` field must repeat when
 * it has one (credentials are granted per subject, so the subject is what NATS checked).
 */
export function requestNode(subject: string, req: unknown): string {
  const node = nodeOfEndpointSubject(subject);
  if (node === undefined) {
    throw new CiliateError('bad_request', `${subject} is not a node-scoped subject`);
  }
  const claimed =
    typeof req === 'object' && req !== null ? (req as { node?: unknown }).node : undefined;
  if (claimed !== undefined && claimed !== node) {
    throw new CiliateError(
      'forbidden',
      `node: ${JSON.stringify(claimed)} is not the node this subject is for ("${node}")`,
      { field: 'node' },
    );
  }
  return node;
}

/** The caps every endpoint of one service shares (--max-inflight-requests, --max-request-bytes). */
export interface RequestLimits {
  /** Requests handled at once, all endpoints of the service together. */
  readonly maxInflight: number;
  /** Largest request body, in bytes. */
  readonly maxRequestBytes: number;
}

export type RefusalReason = 'inflight' | 'size';

/** How often a stream of refusals is logged: the first at once, then one line per interval. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/**
 * Admission of one service's requests. A request is weighed before anything else is done with
 * it: one over the size cap, or one that finds `maxInflight` requests being handled, is answered
 * at once (not decoded, validated, traced or queued), so a flooding caller costs a counter and a
 * reply, never the memory or the event loop the other callers need. The caller is told to come
 * back (`busy`) rather than queued behind work it caused.
 */
export class RequestGate {
  #inflight = 0;
  // One error and one encoded reply for every `busy`: refusing costs no allocation.
  readonly #busy: CiliateError;
  readonly #busyBody: Uint8Array;
  readonly #refusedSinceLog: Record<RefusalReason, number> = { inflight: 0, size: 0 };
  readonly #lastLog: Record<RefusalReason, number> = { inflight: 0, size: 0 };

  constructor(
    readonly limits: RequestLimits,
    component: string,
  ) {
    this.#busy = new CiliateError(
      'busy',
      `${component} has ${limits.maxInflight} requests in flight, its limit (--max-inflight-requests); retry later`,
    );
    this.#busyBody = encoder.encode(JSON.stringify({ error: this.#busy.toWire() }));
  }

  /** Requests being handled now. */
  get inflight(): number {
    return this.#inflight;
  }

  /**
   * Takes a slot for a request of `bytes` and returns undefined, or returns why it may not
   * run. `counted: false` is for endpoints the in-flight cap leaves alone (health); they take no
   * slot. A slot taken is given back with release().
   */
  admit(bytes: number, counted: boolean): RefusalReason | undefined {
    if (bytes > this.limits.maxRequestBytes) return 'size';
    if (!counted) return undefined;
    if (this.#inflight >= this.limits.maxInflight) return 'inflight';
    this.#inflight++;
    return undefined;
  }

  release(): void {
    this.#inflight--;
  }

  /** The error a refused request is answered with, and its encoded body. */
  refusal(reason: RefusalReason, bytes: number): { error: CiliateError; body: Uint8Array } {
    if (reason === 'inflight') {
      return { error: this.#busy, body: this.#busyBody };
    }
    const error = new CiliateError(
      'too_large',
      `request: Too long: ${bytes} bytes, the limit is ${this.limits.maxRequestBytes} bytes (--max-request-bytes)`,
      { field: 'request' },
    );
    return { error, body: encoder.encode(JSON.stringify({ error: error.toWire() })) };
  }

  /**
   * Counts a refusal; returns how many to report when a log line is due (the first refusal,
   * then at most one line per interval), so a flood does not turn into a flood of log lines.
   */
  noteRefusal(reason: RefusalReason, now: number): number | undefined {
    this.#refusedSinceLog[reason]++;
    if (now - this.#lastLog[reason] < REFUSAL_LOG_INTERVAL_MS) return undefined;
    const n = this.#refusedSinceLog[reason];
    this.#refusedSinceLog[reason] = 0;
    this.#lastLog[reason] = now;
    return n;
  }
}

export interface EndpointDeps {
  tracing: Tracing;
  metrics: RuntimeMetrics;
  log: Logger;
  gate: RequestGate;
  /**
   * Whether the endpoint takes an in-flight slot (default true). The health endpoint does not:
   * its answer is synchronous and constant in cost, and an instance that is busy but working
   * must not look dead to discovery.
   */
  counted?: boolean;
}

export function addEndpoint<Req extends z.ZodType, Res extends z.ZodType>(
  service: Service,
  def: EndpointDefinition<Req, Res>,
  deps: EndpointDeps,
): void {
  const { tracing, metrics, log, gate } = deps;
  const counted = deps.counted !== false;
  const refuse = (msg: ServiceMsg, reason: RefusalReason): void => {
    const { error, body } = gate.refusal(reason, msg.data.length);
    msg.respondError(error.status, error.message, body);
    metrics.refused.inc({ endpoint: def.name, reason });
    metrics.requests.inc({ endpoint: def.name, outcome: error.code });
    const n = gate.noteRefusal(reason, Date.now());
    if (n !== undefined) {
      log.warn(
        { event: 'rpc.refused', endpoint: def.name, reason, refused: n, err: error },
        'requests refused at a limit',
      );
    }
  };
  const handle = async (msg: ServiceMsg): Promise<void> => {
    const stopTimer = metrics.requestSeconds.startTimer({ endpoint: def.name });
    const run = async (): Promise<void> => {
      try {
        const req = parseWire(def.request, decodeJson(msg.data, 'request'), `${def.name} request`);
        const res = def.nodeScoped
          ? await def.handler(req, { msg, node: requestNode(msg.subject, req) })
          : await def.handler(req, { msg });
        const checked = parseWire(def.reply, res, `${def.name} reply`);
        msg.respond(encoder.encode(JSON.stringify(checked)));
        metrics.requests.inc({ endpoint: def.name, outcome: 'ok' });
      } catch (err) {
        const e = asCiliateError(err);
        metrics.requests.inc({ endpoint: def.name, outcome: e.code });
        if (e.code === 'internal') {
          log.error({ event: 'rpc.failed', endpoint: def.name, err }, 'request handler failed');
        }
        msg.respondError(
          e.status,
          e.message,
          encoder.encode(JSON.stringify({ error: e.toWire() })),
        );
        throw e;
      }
    };
    try {
      if (tracing.enabled) {
        await inSpan(
          tracing.tracer,
          `${def.subject} process`,
          {
            kind: SpanKind.SERVER,
            parent: extractContext(msg.headers),
            attributes: { 'messaging.system': 'nats', 'messaging.destination.name': def.subject },
          },
          run,
        );
      } else {
        await run();
      }
    } catch {
      // Already answered and counted: a failing request never takes the service down.
    } finally {
      if (counted) gate.release();
      stopTimer();
    }
  };
  service.addEndpoint(def.name, {
    subject: def.subject,
    ...(def.queue !== undefined ? { queue: def.queue } : {}),
    handler: (err, msg) => {
      if (err) {
        log.error(
          { event: 'rpc.subscription_failed', endpoint: def.name, err },
          'endpoint subscription failed',
        );
        return;
      }
      // Weighed before it is decoded: a refusal costs no parsing.
      const refused = gate.admit(msg.data.length, counted);
      if (refused !== undefined) {
        refuse(msg, refused);
        return;
      }
      void handle(msg);
    },
  });
}

/** Typed requests to micro service endpoints, and publishes that carry the trace. */
export interface RpcClient {
  /** Publishes one JSON event; with tracing on, a PRODUCER span and its context in the headers. */
  publish(subject: string, body: unknown): void;
  request<Res extends z.ZodType>(
    subject: string,
    body: unknown,
    reply: Res,
    opts?: { timeoutMs?: number },
  ): Promise<z.output<Res>>;
}

function errorFromReply(msg: Msg): CiliateError | undefined {
  const code = msg.headers?.get(ERROR_CODE_HEADER);
  if (!code) return undefined;
  const description = msg.headers?.get(ERROR_HEADER) ?? 'request failed';
  try {
    const body = JSON.parse(decoder.decode(msg.data)) as { error?: unknown };
    const parsed = WireErrorSchema.safeParse(body.error);
    if (parsed.success) return CiliateError.fromWire(parsed.data);
  } catch {
    // Not one of ours: fall back to the headers.
  }
  // Each status belongs to one code (contracts' errorCodes), so the header alone names it.
  const status = Number(code);
  const known = Object.entries(errorCodes).find(([, s]) => s === status)?.[0];
  return new CiliateError(isErrorCode(known) ? known : 'internal', description);
}

export function createRpcClient(nc: NatsConnection, tracing: Tracing): RpcClient {
  return {
    publish(subject, body) {
      const payload = encoder.encode(JSON.stringify(body ?? null));
      if (!tracing.enabled) {
        nc.publish(subject, payload);
        return;
      }
      const span = tracing.tracer.startSpan(`${subject} publish`, {
        kind: SpanKind.PRODUCER,
        attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject },
      });
      const hdrs = headers();
      injectContext(trace.setSpan(context.active(), span), hdrs);
      try {
        nc.publish(subject, payload, { headers: hdrs });
      } finally {
        span.end();
      }
    },
    async request(subject, body, reply, opts = {}) {
      const send = async (): Promise<Msg> => {
        const hdrs = tracing.enabled ? headers() : undefined;
        const payload = encoder.encode(JSON.stringify(body ?? null));
        const call = async (): Promise<Msg> => {
          try {
            return await nc.request(subject, payload, {
              timeout: opts.timeoutMs ?? 5_000,
              ...(hdrs ? { headers: hdrs } : {}),
            });
          } catch (err) {
            if (
              err instanceof NoRespondersError ||
              (err instanceof Error && err.cause instanceof NoRespondersError)
            ) {
              throw new CiliateError('unavailable', `no service answers on ${subject}`, {
                cause: err,
              });
            }
            if (
              err instanceof TimeoutError ||
              (err instanceof Error && err.cause instanceof TimeoutError)
            ) {
              throw new CiliateError(
                'timeout',
                `no reply on ${subject} within ${opts.timeoutMs ?? 5_000} ms`,
                { cause: err },
              );
            }
            throw err;
          }
        };
        if (!hdrs) return call();
        return inSpan(
          tracing.tracer,
          `${subject} send`,
          {
            kind: SpanKind.CLIENT,
            attributes: { 'messaging.system': 'nats', 'messaging.destination.name': subject },
          },
          async (_span, ctx) => {
            injectContext(ctx, hdrs);
            return call();
          },
        );
      };
      const msg = await send();
      const failure = errorFromReply(msg);
      if (failure) throw failure;
      return parseWire(reply, decodeJson(msg.data, 'reply'), `reply from ${subject}`);
    },
  };
}

/**
 * Subscribes to JSON events on `subject`, validating each with `schema`; with tracing on, each
 * message is handled in a CONSUMER span continuing the publisher's trace. A message that fails
 * validation or a handler that throws is logged and counted, never fatal.
 */
export function subscribeEvents<S extends z.ZodType>(
  nc: NatsConnection,
  subject: string,
  schema: S,
  handler: (event: z.output<S>, msg: Msg) => Promise<void> | void,
  deps: { tracing: Tracing; metrics: RuntimeMetrics; log: Logger; queue?: string },
): { unsubscribe(): void } {
  const { tracing, metrics, log } = deps;
  const sub = nc.subscribe(subject, {
    ...(deps.queue ? { queue: deps.queue } : {}),
    callback: (err, msg) => {
      if (err) {
        log.error({ event: 'events.subscription_failed', subject, err }, 'subscription failed');
        return;
      }
      const run = async (): Promise<void> => {
        const event = parseWire(schema, decodeJson(msg.data, 'event'), `event on ${msg.subject}`);
        await handler(event, msg);
      };
      const wrapped = tracing.enabled
        ? inSpan(
            tracing.tracer,
            `${subject} process`,
            {
              kind: SpanKind.CONSUMER,
              parent: extractContext(msg.headers),
              attributes: { 'messaging.system': 'nats', 'messaging.destination.name': msg.subject },
            },
            run,
          )
        : run();
      wrapped.then(
        () => metrics.requests.inc({ endpoint: `sub:${subject}`, outcome: 'ok' }),
        (e: unknown) => {
          const ce = asCiliateError(e);
          metrics.requests.inc({ endpoint: `sub:${subject}`, outcome: ce.code });
          log.warn(
            { event: 'events.rejected', subject: msg.subject, err: ce },
            'event not handled',
          );
        },
      );
    },
  });
  return { unsubscribe: () => sub.unsubscribe() };
}
