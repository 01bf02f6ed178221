// Trace and drop events from the datapath's ring buffer, published to NATS as they are read
// (`ciliate.v1.datapath.events.<type>.<node>`). Publishing never holds the datapath back: the
// ring buffer is drained on a native thread, and while NATS is unreachable (or the configured
// rate is exceeded) events are dropped and counted, never queued; nats.js would otherwise
// buffer every publish made while disconnected, without bound.
import type { DatapathEvent as DecodedEvent } from '@ciliate/bpf';
import { datapathSubjects, type DatapathEvent, type DatapathEventType } from '@ciliate/contracts';
import { Counter, Registry, type Logger } from '@ciliate/runtime';
import type { NatsConnection } from '@nats-io/transport-node';

import { packetSummary, protoName } from './packet-text.js';

// ---- the pure mapping --------------------------------------------------------------------------

/** Nanoseconds to add to CLOCK_MONOTONIC (bpf_ktime_get_ns) to get Unix time. */
export function realtimeOffsetNs(
  nowUnixMs: number = Date.now(),
  monotonicNs: bigint = process.hrtime.bigint(),
): bigint {
  return BigInt(Math.round(nowUnixMs)) * 1_000_000n - monotonicNs;
}

/** RFC 3339 UTC with nanoseconds (`2026-01-02T03:04:05.123456789Z`). */
export function formatUnixNanos(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = ((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const iso = new Date(Number(ms)).toISOString();
  return `${iso.slice(0, 19)}.${frac.toString().padStart(9, '0')}Z`;
}

/**
 * A decoded ring buffer event as it goes on the wire; undefined for records that are neither a
 * trace nor a drop (the programs emit no others today). Drops carry Cilium's reason code and
 * text (`133`, `Policy denied`) and where the verdict was taken; traces the observation point
 * (`to-endpoint`) and the conntrack state (`new`, `reply`).
 */
export function toWireEvent(
  ev: DecodedEvent,
  ctx: { node: string; realtimeOffsetNs: bigint },
): DatapathEvent | undefined {
  if (ev.kind === 'unknown') return undefined;
  const out: DatapathEvent = {
    type: ev.kind,
    node: ctx.node,
    time: formatUnixNanos(ev.ktimeNs + ctx.realtimeOffsetNs),
    endpointId: ev.source,
    ifindex: ev.ifindex,
    srcIdentity: ev.srcIdentity,
    dstIdentity: ev.dstIdentity,
    length: ev.lenOrig,
  };
  if (ev.kind === 'drop') {
    out.reason = ev.reason;
    out.reasonName = ev.reasonText;
    out.file = ev.file;
    out.line = ev.line;
  } else {
    out.observationPoint = ev.observationPointName;
    out.state = ev.reasonName;
  }
  const p = ev.packet;
  if (p) {
    if (p.ipVersion === 4 && p.protocol !== undefined) {
      out.proto = protoName(p.protocol);
      if (p.srcIp !== undefined) out.src = p.srcIp;
      if (p.dstIp !== undefined) out.dst = p.dstIp;
      if (p.srcPort !== undefined) out.sport = p.srcPort;
      if (p.dstPort !== undefined) out.dport = p.dstPort;
    }
    out.summary = packetSummary(p);
  }
  return out;
}

// ---- the publisher ---------------------------------------------------------------------------

export type EventResult = 'published' | 'nats_down' | 'rate_limited' | 'failed' | 'ignored';
const RESULTS: readonly EventResult[] = [
  'published',
  'nats_down',
  'rate_limited',
  'failed',
  'ignored',
];
const TYPES = ['drop', 'trace', 'unknown'] as const;
type CountedType = (typeof TYPES)[number];

/** What the publisher reads from: a Datapath, or a fake in tests. */
export interface EventSource {
  openEvents(
    onEvents: (events: DecodedEvent[]) => void,
    opts: { keepAlive?: boolean; onError?: (err: Error) => void },
  ): { close(): void };
}

export interface EventPublisherOptions {
  /** The service's connection; only publish and status are used. */
  nc: Pick<NatsConnection, 'publish' | 'status' | 'isClosed'>;
  node: string;
  /** The node's Datapath. */
  datapath: EventSource;
  log?: Logger;
  /** Where `ciliate_datapath_events_total` is registered (the service's registry). */
  registry?: Registry;
  /** Event types to publish (default both); the others are read and counted as ignored. */
  types?: readonly DatapathEventType[];
  /** Events per second at most, summed over types (default 20000); the rest are dropped. */
  maxPerSecond?: number;
  /** Milliseconds clock for the rate limit (tests). */
  now?: () => number;
}

export interface EventPublisherStats {
  /** Counts by event type (drop, trace, unknown) and result. */
  counts: Record<CountedType, Record<EventResult, number>>;
  /** Whether NATS is currently taken to be reachable. */
  natsUp: boolean;
}

export interface EventPublisher {
  /** Closes the ring buffer reader and stops watching the connection. Idempotent. */
  stop(): Promise<void>;
  stats(): EventPublisherStats;
}

const METRIC = 'ciliate_datapath_events_total';

function eventsCounter(registry: Registry): Counter<'type' | 'result'> {
  const existing = registry.getSingleMetric(METRIC);
  if (existing) return existing as Counter<'type' | 'result'>;
  return new Counter({
    name: METRIC,
    help: 'Datapath events read from the ring buffer, by type and what became of them (published, nats_down, rate_limited, failed, ignored)',
    labelNames: ['type', 'result'],
    registers: [registry],
  });
}

const encoder = new TextEncoder();

/** Reads the datapath's events and publishes each one; see the module comment. */
export function startEventPublisher(opts: EventPublisherOptions): EventPublisher {
  const { nc, node, log } = opts;
  const counter = eventsCounter(opts.registry ?? new Registry());
  const wanted = new Set<string>(opts.types ?? ['drop', 'trace']);
  const maxPerSecond = opts.maxPerSecond ?? 20_000;
  const now = opts.now ?? Date.now;
  const counts = Object.fromEntries(
    TYPES.map((t) => [t, Object.fromEntries(RESULTS.map((r) => [r, 0]))]),
  ) as EventPublisherStats['counts'];
  const count = (type: CountedType, result: EventResult): void => {
    counts[type][result]++;
    counter.inc({ type, result });
  };
  for (const t of TYPES) for (const r of RESULTS) counter.inc({ type: t, result: r }, 0);

  let natsUp = !nc.isClosed();
  let stopped = false;
  const status = nc.status();
  const watch = (async () => {
    for await (const s of status) {
      const was = natsUp;
      if (s.type === 'disconnect' || s.type === 'staleConnection' || s.type === 'close') {
        natsUp = false;
      } else if (s.type === 'reconnect') natsUp = true;
      if (was !== natsUp) {
        log?.info(
          { event: natsUp ? 'events.resumed' : 'events.paused' },
          natsUp ? 'NATS is back: publishing events' : 'NATS unreachable: dropping events',
        );
      }
    }
  })().catch((err: unknown) => log?.warn({ event: 'events.status_failed', err }));

  // a token bucket refilled once per second window
  let windowStart = now();
  let inWindow = 0;
  let offset = realtimeOffsetNs();
  let offsetAt = windowStart;
  let failures = 0;

  const onEvents = (events: DecodedEvent[]): void => {
    const t = now();
    if (t - windowStart >= 1000) {
      windowStart = t;
      inWindow = 0;
    }
    // the two clocks drift apart (NTP slews the wall clock): re-read them now and then
    if (t - offsetAt >= 60_000) {
      offset = realtimeOffsetNs();
      offsetAt = t;
    }
    for (const ev of events) {
      const type: CountedType = ev.kind;
      if (ev.kind === 'unknown' || !wanted.has(ev.kind)) {
        count(type, 'ignored');
        continue;
      }
      if (stopped || !natsUp) {
        count(type, 'nats_down');
        continue;
      }
      if (inWindow >= maxPerSecond) {
        count(type, 'rate_limited');
        continue;
      }
      inWindow++;
      const wire = toWireEvent(ev, { node, realtimeOffsetNs: offset });
      try {
        nc.publish(datapathSubjects.event(ev.kind, node), encoder.encode(JSON.stringify(wire)));
        count(type, 'published');
      } catch (err) {
        count(type, 'failed');
        // one line per burst, not per event
        if (failures++ % 1000 === 0) log?.warn({ event: 'events.publish_failed', err });
      }
    }
  };

  const reader = opts.datapath.openEvents(onEvents, {
    keepAlive: false,
    onError: (err) => log?.error({ event: 'events.reader_failed', err }),
  });
  log?.info({ event: 'events.started', node }, 'publishing datapath events');

  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      reader.close();
      (status as { stop?: () => void }).stop?.();
      await watch;
    },
    stats() {
      return {
        counts: Object.fromEntries(
          TYPES.map((t) => [t, { ...counts[t] }]),
        ) as EventPublisherStats['counts'],
        natsUp,
      };
    },
  };
}
