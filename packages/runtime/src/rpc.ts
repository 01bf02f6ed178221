// Request/reply over NATS with validation at both ends, typed errors in the micro service error
// headers, metrics per endpoint, and W3C trace context in the headers.
import {
  CiliateError,
  WireErrorSchema,
  asCiliateError,
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
      `node: "${String(claimed)}" is not the node this subject is for ("${node}")`,
      { field: 'node' },
    );
  }
  return node;
}

export function addEndpoint<Req extends z.ZodType, Res extends z.ZodType>(
  service: Service,
  def: EndpointDefinition<Req, Res>,
  deps: { tracing: Tracing; metrics: RuntimeMetrics; log: Logger },
): void {
  const { tracing, metrics, log } = deps;
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
  const status = Number(code);
  const known = Object.entries({
    400: 'bad_request',
    403: 'forbidden',
    404: 'not_found',
    409: 'conflict',
    503: 'unavailable',
  }).find(([s]) => Number(s) === status)?.[1];
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
