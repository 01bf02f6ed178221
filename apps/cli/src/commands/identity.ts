// `ciliate identity list` and `ciliate identity get ID`: security identities as the identity
// service sees them, with their labels and the nodes that reference them.
import {
  CiliateError,
  IdentityInfoSchema,
  IdentityListReplySchema,
  identitySubject,
  type IdentityInfo,
} from '@ciliate/contracts';
import { createRpcClient, disabledTracing } from '@ciliate/runtime';

import { UsageError, type Command } from '../cli.js';
import { formatTable, render } from '../output.js';

const PAGE = 2000;

export interface IdentityListReport {
  apiVersion: 'ciliate.io/v1';
  kind: 'IdentityList';
  items: IdentityInfo[];
}

function listTable(items: IdentityInfo[]): string {
  if (items.length === 0) return 'No identities.\n';
  return formatTable(
    ['ID', 'REFS', 'NODES', 'LABELS'],
    items.map((i) => [
      String(i.id),
      i.reserved ? '-' : String(i.references),
      i.reserved ? '-' : i.nodes.join(',') || '<none>',
      i.labels.join(' ') + (i.releasing ? '  (releasing)' : ''),
    ]),
  );
}

function getTable(i: IdentityInfo): string {
  const lines = [
    `ID:          ${i.id}`,
    `Kind:        ${i.reserved ? 'reserved' : 'global'}`,
    `Labels:`,
    ...i.labels.map((l) => `  ${l}`),
  ];
  if (!i.reserved) {
    lines.push(`References:  ${i.references}`);
    lines.push(`Nodes:       ${i.nodes.length === 0 ? '<none>' : i.nodes.join(', ')}`);
    if (i.releasing) lines.push('Status:      releasing (freed unless a node takes a reference)');
  }
  return lines.join('\n') + '\n';
}

export const identityCommand: Command = {
  name: 'identity',
  summary: 'List security identities, or show one with its labels and referencing nodes',
  usage: 'ciliate identity list [-o table|json|yaml] | ciliate identity get ID [-o ...]',
  options: {},
  allowPositionals: true,
  async run(ctx, _values, positionals) {
    const [verb, arg, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    if (verb === 'list') {
      if (arg !== undefined) throw new UsageError(`unexpected argument "${arg}"`);
      const rpc = createRpcClient(await ctx.connect(), disabledTracing);
      const items: IdentityInfo[] = [];
      let after: number | undefined;
      for (;;) {
        const page = await rpc.request(
          identitySubject('list'),
          { limit: PAGE, ...(after === undefined ? {} : { after }) },
          IdentityListReplySchema,
        );
        items.push(...page.identities);
        if (page.next === undefined) break;
        after = page.next;
      }
      const report: IdentityListReport = {
        apiVersion: 'ciliate.io/v1',
        kind: 'IdentityList',
        items,
      };
      ctx.io.out(render(ctx.globals.output, report, () => listTable(items)));
      return 0;
    }
    if (verb === 'get') {
      if (arg === undefined || !/^[1-9][0-9]*$/.test(arg)) {
        throw new UsageError(
          `identity get needs a numeric identity, not ${JSON.stringify(arg ?? '')}`,
        );
      }
      const rpc = createRpcClient(await ctx.connect(), disabledTracing);
      try {
        const info = await rpc.request(
          identitySubject('lookup'),
          { id: Number(arg) },
          IdentityInfoSchema,
        );
        ctx.io.out(render(ctx.globals.output, info, () => getTable(info)));
        return 0;
      } catch (err) {
        if (err instanceof CiliateError && err.code === 'not_found') {
          ctx.io.err(`Error from server (NotFound): identity ${arg} not found\n`);
          return 1;
        }
        throw err;
      }
    }
    throw new UsageError(
      verb === undefined
        ? 'identity needs a verb: list or get'
        : `unknown verb "${verb}" (list, get)`,
    );
  },
};
