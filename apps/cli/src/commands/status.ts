// `ciliate status [--wait]`: every running Ciliate service instance, found over NATS.
import { parseDuration, discoverInstances, fetchHealth } from '@ciliate/runtime';
import type { StatusInstance, StatusReport } from '@ciliate/contracts';
import type { NatsConnection } from '@nats-io/transport-node';

import { UsageError, type Command } from '../cli.js';
import type { ExpectedInstance } from '../context.js';
import { formatDuration, formatTable, render } from '../output.js';

export async function collectStatus(
  nc: NatsConnection,
  natsUrl: string,
  now = Date.now(),
  expected: readonly ExpectedInstance[] = [],
): Promise<StatusReport> {
  const found = await discoverInstances(nc, { maxWaitMs: 750 });
  const instances: StatusInstance[] = await Promise.all(
    found.map(async (inst) => {
      const h = await fetchHealth(nc, inst);
      const startedAt = h?.startedAt ?? null;
      return {
        component: inst.component,
        instanceId: inst.instanceId,
        node: inst.node,
        version: inst.version,
        startedAt,
        uptimeSeconds:
          startedAt === null ? null : Math.max(0, Math.round((now - Date.parse(startedAt)) / 1000)),
        health: h === undefined ? 'unreachable' : h.ready ? 'ready' : 'not-ready',
        checks: h?.checks ?? [],
      } satisfies StatusInstance;
    }),
  );
  const count = (h: StatusInstance['health']): number =>
    instances.filter((i) => i.health === h).length;
  const missing = expected
    .filter((e) => !instances.some((i) => i.component === e.component && i.node === e.node))
    .map((e) => ({ component: e.component, node: e.node }));
  return {
    apiVersion: 'ciliate.io/v1',
    kind: 'Status',
    nats: { url: natsUrl, connected: !nc.isClosed(), serverVersion: nc.info?.version ?? null },
    instances,
    ...(expected.length > 0 ? { missing } : {}),
    summary: {
      total: instances.length,
      ready: count('ready'),
      notReady: count('not-ready'),
      unreachable: count('unreachable'),
      ...(expected.length > 0 ? { missing: missing.length } : {}),
    },
  };
}

function why(i: StatusInstance): string {
  if (i.health === 'unreachable') return 'health not answered';
  const failing = i.checks
    .filter((c) => !c.ok)
    .map((c) => (c.detail ? `${c.name}: ${c.detail}` : c.name));
  return failing.join('; ');
}

export function statusTable(r: StatusReport): string {
  const missing = r.missing ?? [];
  if (r.instances.length === 0 && missing.length === 0)
    return `No Ciliate services found on ${r.nats.url}.\n`;
  const rows = r.instances.map((i) => [
    i.component,
    i.node,
    i.instanceId,
    i.version,
    i.uptimeSeconds === null ? '-' : formatDuration(i.uptimeSeconds),
    i.health,
    why(i),
  ]);
  for (const m of missing) {
    rows.push([
      m.component,
      m.node,
      '-',
      '-',
      '-',
      'missing',
      'expected by the context; no instance answers',
    ]);
  }
  const expected = r.summary.total + missing.length;
  return (
    formatTable(['COMPONENT', 'NODE', 'INSTANCE', 'VERSION', 'UPTIME', 'HEALTH', 'DETAIL'], rows) +
    `\n${r.summary.ready}/${expected} ready${missing.length ? `, ${missing.length} missing` : ''} (NATS ${r.nats.url}${r.nats.serverVersion ? `, server ${r.nats.serverVersion}` : ''})\n`
  );
}

/** What --wait still waits for, or undefined when everything asked for is ready. */
function pending(r: StatusReport, expect: string[]): string[] | undefined {
  const missing = expect.filter((c) => !r.instances.some((i) => i.component === c));
  const notReady = r.instances
    .filter((i) => i.health !== 'ready')
    .map((i) => `${i.component}@${i.node} (${why(i) || i.health})`);
  const out = [
    ...missing.map((c) => `${c} (no instance found)`),
    ...(r.missing ?? []).map((m) => `${m.component}@${m.node} (missing)`),
    ...notReady,
  ];
  if (r.instances.length === 0 && expect.length === 0) out.push('any service (none found)');
  return out.length === 0 ? undefined : out;
}

export const statusCommand: Command = {
  name: 'status',
  summary: 'Show every running Ciliate service instance with version, node, uptime and health',
  usage: 'ciliate status [--wait [--timeout 2m] [--expect COMPONENT,...]] [-o table|json|yaml]',
  options: {
    wait: { type: 'boolean' },
    timeout: { type: 'string' },
    expect: { type: 'string' },
  },
  async run(ctx, values) {
    const wait = values.wait === true;
    let timeoutMs = 120_000;
    if (typeof values.timeout === 'string') {
      try {
        timeoutMs = parseDuration(values.timeout);
      } catch (err) {
        throw new UsageError(`--timeout: ${(err as Error).message}`);
      }
    }
    const expect =
      typeof values.expect === 'string'
        ? values.expect
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : [];
    if (!wait) {
      const nc = await ctx.connect();
      const report = await collectStatus(nc, ctx.natsUrl(), Date.now(), ctx.expected());
      ctx.io.out(render(ctx.globals.output, report, () => statusTable(report)));
      return 0;
    }
    const deadline = Date.now() + timeoutMs;
    const nc = await ctx.connect({ retryUntil: deadline });
    let last: StatusReport | undefined;
    let lastPending: string[] | undefined = [];
    const started = Date.now();
    while (Date.now() < deadline) {
      last = await collectStatus(nc, ctx.natsUrl(), Date.now(), ctx.expected());
      lastPending = pending(last, expect);
      if (lastPending === undefined) break;
      if (ctx.io.interactive) {
        const secs = Math.round((Date.now() - started) / 1000);
        ctx.io.err(
          `\r\x1b[2Kwaiting (${secs}s): ${last.summary.ready}/${last.summary.total} ready; ${lastPending[0]}`,
        );
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    if (ctx.io.interactive) ctx.io.err('\r\x1b[2K');
    if (lastPending !== undefined) {
      if (last) ctx.io.out(render(ctx.globals.output, last, () => statusTable(last)));
      ctx.io.err(
        `error: timed out after ${formatDuration(timeoutMs / 1000)} waiting for: ${(lastPending ?? []).join(', ')}\n`,
      );
      return 1;
    }
    ctx.io.out(render(ctx.globals.output, last!, () => statusTable(last!)));
    return 0;
  },
};
