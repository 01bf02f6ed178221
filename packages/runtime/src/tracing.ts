// OpenTelemetry tracing, configured by the standard OTEL_* variables and off unless asked for:
// with no exporter configured nothing is loaded and no header is written, so it costs nothing.
import {
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
  type Tracer,
} from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/transport-node';

import { ConfigError } from './config.js';

export { SpanKind, SpanStatusCode };
export type { Span, Tracer, Context };

export interface Tracing {
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /** Flushes and stops the exporter. */
  shutdown(): Promise<void>;
}

const EXPORTERS = ['otlp', 'console', 'none'] as const;

/** Which exporter the environment asks for, or undefined for "tracing off". */
export function tracesExporterFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): 'otlp' | 'console' | undefined {
  if ((env.OTEL_SDK_DISABLED ?? '').toLowerCase() === 'true') return undefined;
  const raw = env.OTEL_TRACES_EXPORTER?.trim();
  if (raw === undefined || raw === '') {
    // The OTel default exporter is OTLP; Ciliate only turns it on when an endpoint is given,
    // so that a service without tracing configured never tries to reach a collector.
    return env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
      ? 'otlp'
      : undefined;
  }
  const first = raw.split(',')[0]!.trim();
  if (!(EXPORTERS as readonly string[]).includes(first)) {
    throw new ConfigError(
      'OTEL_TRACES_EXPORTER',
      `invalid setting OTEL_TRACES_EXPORTER: "${raw}" is not one of ${EXPORTERS.join(', ')}`,
    );
  }
  return first === 'none' ? undefined : (first as 'otlp' | 'console');
}

/** Tracing switched off: a no-op tracer, and no header is ever written. */
export const disabledTracing: Tracing = {
  enabled: false,
  tracer: trace.getTracer('ciliate'),
  shutdown: async () => {},
};

export async function setupTracing(opts: {
  serviceName: string;
  serviceVersion: string;
  instanceId: string;
  node: string;
  env: Readonly<Record<string, string | undefined>>;
}): Promise<Tracing> {
  const exporterKind = tracesExporterFromEnv(opts.env);
  if (exporterKind === undefined) {
    return disabledTracing;
  }
  // Loaded only when tracing is on.
  const [{ NodeTracerProvider }, base, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/resources'),
  ]);
  const exporter =
    exporterKind === 'console'
      ? new base.ConsoleSpanExporter()
      : new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      'service.name': opts.env.OTEL_SERVICE_NAME || opts.serviceName,
      'service.version': opts.serviceVersion,
      'service.instance.id': opts.instanceId,
      'host.name': opts.node,
    }),
    spanProcessors: [new base.BatchSpanProcessor(exporter)],
  });
  provider.register();
  return {
    enabled: true,
    tracer: provider.getTracer(opts.serviceName, opts.serviceVersion),
    shutdown: async () => {
      await provider.shutdown();
    },
  };
}

const headerSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

const headerGetter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get: (carrier, key) => {
    if (!carrier) return undefined;
    const v = carrier.get(key);
    return v === '' ? undefined : v;
  },
};

/** Writes the W3C trace context of `ctx` into NATS headers. */
export function injectContext(ctx: Context, hdrs: MsgHdrs): void {
  propagation.inject(ctx, hdrs, headerSetter);
}

/** Reads a W3C trace context from NATS headers (the active context when there is none). */
export function extractContext(hdrs: MsgHdrs | undefined): Context {
  return propagation.extract(context.active(), hdrs, headerGetter);
}

/** Runs `fn` inside a span, records failures on it and always ends it. */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  opts: {
    kind: SpanKind;
    parent?: Context;
    attributes?: Record<string, string | number | boolean>;
  },
  fn: (span: Span, ctx: Context) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = tracer.startSpan(
    name,
    { kind: opts.kind, attributes: opts.attributes ?? {} },
    parent,
  );
  const ctx = trace.setSpan(parent, span);
  try {
    return await context.with(ctx, () => fn(span, ctx));
  } catch (err) {
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: err instanceof Error ? err.message : String(err),
    });
    throw err;
  } finally {
    span.end();
  }
}
