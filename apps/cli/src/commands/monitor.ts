// `ciliate monitor`: live trace and drop events from every node's datapath (or one node's, or
// one type), one line per event like `cilium monitor`, or JSON lines with -o json. Filtering
// happens on the server: the type and node are subject tokens.
import {
  DATAPATH_EVENT_TYPES,
  DatapathEventSchema,
  datapathSubjects,
  type DatapathEvent,
  type DatapathEventType,
} from '@ciliate/contracts';
import { stringify } from 'yaml';

import { UsageError, type Command } from '../cli.js';
import type { OutputFormat } from '../output.js';
import { nodeFlag, positiveIntFlag } from './datapath.js';

const POINT_TEXT: Readonly<Record<string, string>> = {
  'to-endpoint': '-> endpoint',
  'from-endpoint': '<- endpoint',
  'to-stack': '-> stack',
  'from-stack': '<- stack',
  'to-host': '-> host',
  'from-host': '<- host',
  'to-overlay': '-> overlay',
  'from-overlay': '<- overlay',
  'to-network': '-> network',
  'from-network': '<- network',
  'to-proxy': '-> proxy',
  'from-proxy': '<- proxy',
};

function tuple(ev: DatapathEvent): string {
  const at = (addr: string | undefined, port: number | undefined): string =>
    port !== undefined ? `${addr}:${port}` : (addr ?? '?');
  const parts: string[] = [];
  if (ev.src !== undefined || ev.dst !== undefined) {
    parts.push(`${at(ev.src, ev.sport)} -> ${at(ev.dst, ev.dport)}`);
  }
  if (ev.summary !== undefined) parts.push(ev.summary);
  return parts.length > 0 ? parts.join(' ') : `${ev.length} bytes`;
}

/** One event as `cilium monitor` would print it, prefixed by its time and node. */
export function formatEventLine(ev: DatapathEvent): string {
  const time = ev.time.length >= 19 ? ev.time.slice(11).replace(/Z$/, '') : ev.time;
  const ids = `identity ${ev.srcIdentity}->${ev.dstIdentity}`;
  let what: string;
  if (ev.type === 'drop') {
    const where = ev.file !== undefined ? ` file ${ev.file}:${ev.line ?? 0}` : '';
    what = `xx drop (${ev.reasonName ?? `reason ${ev.reason ?? '?'}`})${where} endpoint ${ev.endpointId} ifindex ${ev.ifindex} ${ids}`;
  } else {
    const point = ev.observationPoint ?? 'trace';
    const arrow = POINT_TEXT[point] ?? point;
    const target = arrow.endsWith('endpoint') ? `${arrow} ${ev.endpointId}` : arrow;
    what = `${target} ${ids}${ev.state !== undefined ? ` state ${ev.state}` : ''} ifindex ${ev.ifindex}`;
  }
  return `${time} [${ev.node}] ${what}: ${tuple(ev)}`;
}

export function formatEvent(format: OutputFormat, ev: DatapathEvent): string {
  switch (format) {
    case 'json':
      return JSON.stringify(ev) + '\n';
    case 'yaml':
      return `---\n${stringify(ev)}`;
    case 'table':
      return formatEventLine(ev) + '\n';
  }
}

export const monitorCommand: Command = {
  name: 'monitor',
  summary: 'Show trace and drop events from the datapath as they happen',
  usage:
    'ciliate monitor [--type drop|trace] [--node NODE] [--count K] [-o table|json|yaml]  (Ctrl-C ends)',
  options: { type: { type: 'string' }, node: { type: 'string' }, count: { type: 'string' } },
  async run(ctx, values) {
    const type = values.type;
    if (type !== undefined && !(DATAPATH_EVENT_TYPES as readonly unknown[]).includes(type)) {
      throw new UsageError(
        `--type: "${String(type)}" is not one of ${DATAPATH_EVENT_TYPES.join(', ')}`,
      );
    }
    const node = nodeFlag(values.node);
    const count = positiveIntFlag('count', values.count, 1_000_000_000);
    const subject = datapathSubjects.events({
      ...(type !== undefined ? { type: type as DatapathEventType } : {}),
      ...(node !== undefined ? { node } : {}),
    });
    const nc = await ctx.connect();
    const sub = nc.subscribe(subject);
    let interrupted = false;
    const stop = (): void => {
      interrupted = true;
      sub.unsubscribe();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      // subscribed on the server before saying so: a caller may start traffic on this line
      await nc.flush();
      ctx.io.err(`Listening for datapath events on ${subject}; press Ctrl-C to quit\n`);
      let seen = 0;
      const decoder = new TextDecoder();
      for await (const msg of sub) {
        let parsed;
        try {
          parsed = DatapathEventSchema.safeParse(JSON.parse(decoder.decode(msg.data)));
        } catch {
          parsed = undefined;
        }
        if (!parsed?.success) {
          ctx.io.err(`warning: ignored a malformed event on ${msg.subject}\n`);
          continue;
        }
        ctx.io.out(formatEvent(ctx.globals.output, parsed.data));
        if (count !== undefined && ++seen >= count) break;
      }
      if (!interrupted && (count === undefined || seen < count)) {
        ctx.io.err('error: the connection to NATS was closed\n');
        return 1;
      }
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      sub.unsubscribe();
    }
  },
};
