// TypeScript project references must follow package.json: `tsc -b` builds a referenced project
// first, and a dependency missing from `references` builds against stale or absent declarations
// only when turbo happens to have built it already. Every @ciliate/* dependency (dependencies and
// devDependencies) of a workspace package is one reference in its tsconfig.json, and nothing else.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

import ts from 'typescript';

const SCOPE = '@ciliate/';

interface Workspace {
  /** Relative to the root, with forward slashes: `services/ipam`. */
  dir: string;
  name: string;
  deps: string[];
}

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, 'utf8')) as unknown;
}

/** The root package.json's workspaces; each entry is a directory or `dir/*`. */
function workspaces(root: string): Workspace[] {
  const pkg = readJson(join(root, 'package.json')) as { workspaces?: string[] };
  const dirs = (pkg.workspaces ?? []).flatMap((w) => {
    if (!w.endsWith('/*')) return [w];
    const parent = w.slice(0, -2);
    if (!existsSync(join(root, parent))) return [];
    return readdirSync(join(root, parent), { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(root, parent, e.name, 'package.json')))
      .map((e) => `${parent}/${e.name}`);
  });
  return dirs.map((dir) => {
    const p = readJson(join(root, dir, 'package.json')) as {
      name: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    const deps = Object.keys({ ...p.dependencies, ...p.devDependencies }).filter((d) =>
      d.startsWith(SCOPE),
    );
    return { dir, name: p.name, deps };
  });
}

/** The `references` of dir/tsconfig.json as directories relative to the root. */
function references(root: string, dir: string): string[] {
  const file = join(root, dir, 'tsconfig.json');
  const read = ts.readConfigFile(file, (f) => ts.sys.readFile(f));
  if (read.error) {
    throw new Error(
      `${dir}/tsconfig.json: ${ts.flattenDiagnosticMessageText(read.error.messageText, '\n')}`,
    );
  }
  const refs = (read.config as { references?: { path: string }[] }).references ?? [];
  return refs.map((r) =>
    relative(root, resolve(root, dir, r.path))
      .split('\\')
      .join('/'),
  );
}

/** Every disagreement between a package's @ciliate/* dependencies and its tsconfig references,
 * one sentence each naming the package; empty when they all agree. */
export function referenceMismatches(root: string): string[] {
  const all = workspaces(root);
  const dirOf = new Map(all.map((w) => [w.name, w.dir]));
  const nameOf = new Map(all.map((w) => [w.dir, w.name]));
  const problems: string[] = [];
  for (const w of all) {
    const where = `${w.name} (${w.dir})`;
    if (!existsSync(join(root, w.dir, 'tsconfig.json'))) {
      if (w.deps.length > 0) {
        problems.push(`${where}: depends on ${w.deps.join(', ')} but has no tsconfig.json`);
      }
      continue;
    }
    const refs = references(root, w.dir);
    const rel = (to: string) => relative(join(root, w.dir), join(root, to)).split('\\').join('/');
    for (const dep of w.deps) {
      const dir = dirOf.get(dep);
      if (dir === undefined) {
        problems.push(`${where}: depends on ${dep}, which is no workspace package`);
      } else if (!refs.includes(dir)) {
        problems.push(
          `${where}: tsconfig.json lacks the reference { "path": "${rel(dir)}" } for its dependency ${dep}`,
        );
      }
    }
    for (const ref of refs) {
      const name = nameOf.get(ref);
      if (name === undefined) {
        problems.push(
          `${where}: tsconfig.json references ${rel(ref)}, which is no workspace package`,
        );
      } else if (!w.deps.includes(name)) {
        problems.push(
          `${where}: tsconfig.json references ${rel(ref)} (${name}), which package.json does not list as a dependency`,
        );
      }
    }
  }
  return problems;
}
