// `ciliate apply`, `get` and `delete`: kubectl's habits over the resource store.
import { readFile, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';

import { CiliateError } from '@ciliate/contracts';
import {
  objectRef,
  parseManifests,
  resolveResource,
  toJson,
  toYaml,
  type KindDescriptor,
  type KubeObject,
  type PrinterColumn,
} from '@ciliate/resources';
import { ResourceStore } from '@ciliate/store';

import { UsageError, type Command, type CommandContext } from '../cli.js';
import { formatDuration, formatTable } from '../output.js';

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

async function readSources(
  files: string[],
  recursive: boolean,
  stdin: () => Promise<string>,
): Promise<{ source: string; text: string }[]> {
  const out: { source: string; text: string }[] = [];
  const visit = async (path: string, top: boolean): Promise<void> => {
    let st;
    try {
      st = await stat(path);
    } catch {
      throw new CiliateError('not_found', `the path "${path}" does not exist`);
    }
    if (st.isDirectory()) {
      if (!top && !recursive) return;
      for (const name of (await readdir(path)).sort()) {
        const child = join(path, name);
        const cst = await stat(child);
        if (cst.isDirectory() ? recursive : MANIFEST_EXTENSIONS.has(extname(name)))
          await visit(child, false);
      }
      return;
    }
    out.push({ source: path, text: await readFile(path, 'utf8') });
  };
  for (const f of files) {
    if (f === '-') out.push({ source: 'STDIN', text: await stdin() });
    else await visit(f, true);
  }
  return out;
}

/** Parses every document of every file; any problem anywhere means nothing is applied. */
async function loadObjects(
  ctx: CommandContext,
  values: Record<string, unknown>,
): Promise<KubeObject[]> {
  const files = (values.filename as string[] | undefined) ?? [];
  if (files.length === 0)
    throw new UsageError('-f/--filename is required (a file, a directory or - for stdin)');
  const sources = await readSources(files, values.recursive === true, ctx.io.readStdin);
  const objects: KubeObject[] = [];
  const problems: string[] = [];
  for (const { source, text } of sources) {
    const r = parseManifests(text, source, {
      defaultNamespace: (values.namespace as string | undefined) ?? 'default',
    });
    if (r.ok) objects.push(...r.objects);
    else problems.push(...r.errors.map((e) => e.message));
    for (const w of r.warnings) ctx.io.err(`Warning: ${w}\n`);
  }
  if (problems.length > 0) {
    throw new CiliateError('bad_request', `${problems.join('\n')}\nnothing was applied`);
  }
  if (objects.length === 0) throw new CiliateError('bad_request', 'no objects passed to apply');
  return objects;
}

function kindLabel(k: { kind: string; group: string }): string {
  return k.group === '' ? k.kind.toLowerCase() : `${k.kind.toLowerCase()}.${k.group}`;
}

function resolveKind(name: string): KindDescriptor {
  const k = resolveResource(name);
  if (!k)
    throw new CiliateError('bad_request', `the server doesn't have a resource type "${name}"`);
  if (!k.supported)
    throw new CiliateError(
      'not_supported',
      `${k.kind} (${k.group}) is not supported by Ciliate: ${k.reason}`,
    );
  return k;
}

async function openStore(ctx: CommandContext): Promise<ResourceStore> {
  return ResourceStore.open(await ctx.connect());
}

export const applyCommand: Command = {
  name: 'apply',
  summary: 'Apply manifests (Kubernetes and cilium.io YAML or JSON) to the resource store',
  usage: 'ciliate apply -f FILE|DIR|- [-f ...] [-R] [-n NAMESPACE]',
  options: {
    filename: { type: 'string', short: 'f', multiple: true },
    recursive: { type: 'boolean', short: 'R' },
    namespace: { type: 'string', short: 'n' },
  },
  async run(ctx, values) {
    const objects = await loadObjects(ctx, values);
    const store = await openStore(ctx);
    for (const obj of objects) {
      const before = await store.get(objectRef(obj));
      const r = await store.apply(obj, { source: 'apply' });
      const what = !before ? 'created' : r.changed ? 'configured' : 'unchanged';
      const k = resolveKind(obj.kind);
      ctx.io.out(`${kindLabel(k)}/${obj.metadata.name} ${what}\n`);
    }
    return 0;
  },
};

export const deleteCommand: Command = {
  name: 'delete',
  summary: 'Delete objects by file or by kind and name',
  usage: 'ciliate delete (-f FILE|DIR|- | KIND NAME...) [-n NAMESPACE] [--ignore-not-found]',
  options: {
    filename: { type: 'string', short: 'f', multiple: true },
    recursive: { type: 'boolean', short: 'R' },
    namespace: { type: 'string', short: 'n' },
    'ignore-not-found': { type: 'boolean' },
  },
  allowPositionals: true,
  async run(ctx, values, positionals) {
    const refs: { kind: KindDescriptor; namespace: string; name: string }[] = [];
    if (values.filename) {
      if (positionals.length > 0) throw new UsageError('give either -f or KIND NAME, not both');
      for (const obj of await loadObjects(ctx, values)) {
        const r = objectRef(obj);
        refs.push({ kind: resolveKind(r.kind), namespace: r.namespace, name: r.name });
      }
    } else {
      const [kindName, ...names] = positionals;
      if (!kindName || names.length === 0)
        throw new UsageError('give KIND and at least one NAME, or -f FILE');
      const kind = resolveKind(kindName);
      const ns = kind.namespaced ? ((values.namespace as string | undefined) ?? 'default') : '';
      for (const name of names) refs.push({ kind, namespace: ns, name });
    }
    const store = await openStore(ctx);
    let missing = 0;
    for (const r of refs) {
      const existed = await store.delete({
        kind: r.kind.kind,
        namespace: r.namespace,
        name: r.name,
      });
      if (existed) ctx.io.out(`${kindLabel(r.kind)} "${r.name}" deleted\n`);
      else if (values['ignore-not-found'] !== true) {
        missing++;
        ctx.io.err(`Error from server (NotFound): ${r.kind.plural} "${r.name}" not found\n`);
      }
    }
    return missing > 0 ? 1 : 0;
  },
};

/** Reads `.a.b[0].c` (the subset of JSONPath printer columns use). */
export function readJsonPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const part of path.replace(/^\./, '').split(/\.|(?=\[)/)) {
    if (part === '') continue;
    const idx = /^\[(\d+)\]$/.exec(part);
    if (idx) cur = Array.isArray(cur) ? cur[Number(idx[1])] : undefined;
    else
      cur =
        cur !== null && typeof cur === 'object'
          ? (cur as Record<string, unknown>)[part]
          : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

function cell(obj: KubeObject, col: PrinterColumn, now: number): string {
  const v = readJsonPath(obj, col.jsonPath);
  if (v === undefined || v === null || v === '')
    return col.type === 'date' ? '<unknown>' : '<none>';
  if (col.type === 'date' && typeof v === 'string') {
    const t = Date.parse(v);
    return Number.isNaN(t) ? v : formatDuration(Math.max(0, (now - t) / 1000));
  }
  const show = (x: unknown): string => {
    if (typeof x === 'string') return x;
    if (typeof x === 'number' || typeof x === 'boolean') return x.toString();
    return JSON.stringify(x) ?? '';
  };
  return Array.isArray(v) ? v.map(show).join(',') : show(v);
}

export const getCommand: Command = {
  name: 'get',
  summary: 'Show objects from the resource store',
  usage: 'ciliate get KIND [NAME...] [-n NAMESPACE | -A] [-o table|json|yaml]',
  options: {
    namespace: { type: 'string', short: 'n' },
    'all-namespaces': { type: 'boolean', short: 'A' },
  },
  allowPositionals: true,
  async run(ctx, values, positionals) {
    const [kindName, ...names] = positionals;
    if (!kindName) throw new UsageError('give the KIND to show (e.g. pods, svc, cnp, ciliumnodes)');
    const kind = resolveKind(kindName);
    const all = values['all-namespaces'] === true;
    const ns = kind.namespaced
      ? all
        ? undefined
        : ((values.namespace as string | undefined) ?? 'default')
      : '';
    const store = await openStore(ctx);
    let items: KubeObject[];
    if (names.length > 0) {
      if (ns === undefined) throw new UsageError('a NAME needs one namespace: drop -A');
      items = [];
      for (const name of names) {
        const got = await store.get({ kind: kind.kind, namespace: ns, name });
        if (!got)
          throw new CiliateError(
            'not_found',
            `Error from server (NotFound): ${kind.plural} "${name}" not found`,
          );
        items.push(got.object);
      }
    } else {
      items = (await store.list(kind.kind, ns)).map((s) => s.object);
    }
    const single = names.length === 1;
    switch (ctx.globals.output) {
      case 'json':
        ctx.io.out(toJson(single ? items[0]! : items));
        return 0;
      case 'yaml':
        ctx.io.out(
          single
            ? toYaml(items[0]!)
            : toYaml({
                apiVersion: 'v1',
                kind: 'List',
                items,
                metadata: { resourceVersion: '' },
              } as KubeObject),
        );
        return 0;
      case 'table': {
        if (items.length === 0) {
          ctx.io.err(ns ? `No resources found in ${ns} namespace.\n` : 'No resources found\n');
          return 0;
        }
        const now = Date.now();
        const cols = kind.printerColumns.filter((c) => !c.priority);
        const headers = [
          ...(all && kind.namespaced ? ['NAMESPACE'] : []),
          'NAME',
          ...cols.map((c) => c.name.toUpperCase()),
        ];
        const rows = items.map((o) => [
          ...(all && kind.namespaced ? [o.metadata.namespace ?? ''] : []),
          o.metadata.name ?? '',
          ...cols.map((c) => cell(o, c, now)),
        ]);
        ctx.io.out(formatTable(headers, rows));
        return 0;
      }
    }
  },
};
