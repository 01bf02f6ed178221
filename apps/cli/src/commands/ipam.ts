// `ciliate ipam status`: the IPAM service's pools (capacity, used, available, conflicts), the
// cluster pool and every node's pod CIDRs and usage, asked of the service over NATS.
import { IpamStatusReplySchema, ipamSubject, type IpamStatusReply } from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';

import { UsageError, type Command } from '../cli.js';
import { formatTable, render } from '../output.js';

function table(r: IpamStatusReply): string {
  const out: string[] = [];
  out.push(
    `IPAM mode: ${r.mode}; LB-IPAM leader: ${r.lb.leader ?? 'none'}; LB services: ${r.lb.services} (${r.lb.unsatisfied} unsatisfied)\n`,
  );
  const pools = [
    ...r.clusterPool.map((p) => [
      'cluster-pool',
      p.family,
      `${p.cidrs.join(',')} /${p.maskSize}`,
      String(p.capacity),
      String(p.used),
      String(p.available),
      '-',
    ]),
    ...r.pools.map((p) => [
      p.pool,
      p.family,
      p.disabled ? 'disabled' : 'lb-ipam',
      String(p.capacity),
      String(p.used),
      String(p.available),
      p.conflicting ? `yes: ${p.detail ?? ''}` : p.detail ? `invalid: ${p.detail}` : 'no',
    ]),
  ];
  out.push(
    pools.length === 0
      ? 'No pools.\n'
      : formatTable(['POOL', 'FAMILY', 'KIND', 'CAPACITY', 'USED', 'AVAILABLE', 'CONFLICT'], pools),
  );
  out.push('\n');
  out.push(
    r.nodes.length === 0
      ? 'No nodes have pod CIDRs.\n'
      : formatTable(
          ['NODE', 'IPV4 CIDR', 'IPV6 CIDR', 'USED', 'CAPACITY'],
          r.nodes.map((n) => [
            n.node,
            n.cidrs.ipv4 ?? '-',
            n.cidrs.ipv6 ?? '-',
            String(n.used),
            String(n.capacity),
          ]),
        ),
  );
  for (const issue of r.issues) out.push(`warning: ${issue}\n`);
  return out.join('');
}

export const ipamCommand: Command = {
  name: 'ipam',
  summary: "Show IPAM pools (capacity, used, available, conflicts) and nodes' pod CIDRs",
  usage: 'ciliate ipam status [-o table|json|yaml]',
  options: {},
  allowPositionals: true,
  async run(ctx, _values, positionals) {
    if (positionals.length !== 1 || positionals[0] !== 'status') {
      throw new UsageError(
        `unknown ipam subcommand "${positionals.join(' ')}" (usage: ciliate ipam status)`,
      );
    }
    const nc = await ctx.connect();
    const rpc = createRpcClient(nc, disabledTracing);
    const report = await rpc.request(ipamSubject('status'), {}, IpamStatusReplySchema, {
      timeoutMs: 10_000,
    });
    ctx.io.out(render(ctx.globals.output, report, () => table(report)));
    return 0;
  },
};
