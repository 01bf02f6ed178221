// No service depends on another service: services talk over NATS, with the wire in
// @ciliate/contracts and shared pure code in packages/ (the IPAM and identity cores included).
// Read from every services/*/package.json and every source file, so a new service or a new
// import is checked without touching this test. A workspace hoists every package into
// node_modules, so an import resolves even when package.json does not declare it: both are
// checked.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SERVICES = join(ROOT, 'services');

/** Services named by the architecture that may not exist yet; they are service packages too. */
const PLANNED = ['@ciliate/lb-announcer', '@ciliate/clustermesh'];

/**
 * Allowed service-to-service dependencies, each with its reason ("dependent -> dependency").
 * Empty: the datapath's tests start IPAM and identity as processes by path, and its build order
 * for them is in services/datapath/turbo.json.
 */
const EXCEPTIONS: ReadonlyMap<string, string> = new Map<string, string>([]);

const DEPENDENCY_FIELDS = [
  'dependencies',
  'devDependencies',
  'peerDependencies',
  'optionalDependencies',
] as const;

interface ServicePackage {
  dir: string;
  name: string;
  json: Record<string, unknown>;
}

function servicePackages(): ServicePackage[] {
  return readdirSync(SERVICES, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(SERVICES, e.name, 'package.json')))
    .map((e) => {
      const dir = join(SERVICES, e.name);
      const json = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<
        string,
        unknown
      >;
      assert.equal(typeof json.name, 'string', `services/${e.name}/package.json: name`);
      return { dir: e.name, name: json.name as string, json };
    });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory())
      return e.name === 'node_modules' || e.name === 'dist' ? [] : sourceFiles(p);
    return /\.(ts|tsx|mts|js|mjs)$/.test(e.name) ? [p] : [];
  });
}

/** Every module a source text imports or resolves: static, dynamic, export-from, import.meta.resolve. */
function importedModules(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bresolve\s*\(\s*)['"]([^'"]+)['"]/g,
  )) {
    out.push(m[1]!);
  }
  return out;
}

/** `@ciliate/ipam/x` is `@ciliate/ipam`. */
function packageOf(specifier: string): string {
  return specifier.split('/').slice(0, 2).join('/');
}

describe('service boundaries', () => {
  const services = servicePackages();
  const serviceNames = new Set([...services.map((s) => s.name), ...PLANNED]);

  it('finds the services it guards', () => {
    for (const name of ['@ciliate/ipam', '@ciliate/identity', '@ciliate/datapath']) {
      assert.ok(serviceNames.has(name), `${name} is among services/*/package.json`);
    }
  });

  it('no service package.json depends on another service (devDependencies included)', () => {
    const found: string[] = [];
    for (const s of services) {
      for (const field of DEPENDENCY_FIELDS) {
        const deps = (s.json[field] ?? {}) as Record<string, string>;
        for (const dep of Object.keys(deps)) {
          if (dep === s.name || !serviceNames.has(dep)) continue;
          if (EXCEPTIONS.has(`${s.name} -> ${dep}`)) continue;
          found.push(`services/${s.dir}/package.json ${field}: ${dep}`);
        }
      }
    }
    assert.deepEqual(found, [], 'services reach each other over NATS, not by import');
  });

  it('no service source imports another service', () => {
    const found: string[] = [];
    for (const s of services) {
      const src = join(SERVICES, s.dir, 'src');
      if (!existsSync(src)) continue;
      for (const file of sourceFiles(src)) {
        for (const spec of importedModules(readFileSync(file, 'utf8'))) {
          const dep = packageOf(spec);
          if (dep === s.name || !serviceNames.has(dep)) continue;
          if (EXCEPTIONS.has(`${s.name} -> ${dep}`)) continue;
          found.push(`${file.slice(ROOT.length + 1)}: ${spec}`);
        }
      }
    }
    assert.deepEqual(found, [], 'services reach each other over NATS, not by import');
  });

  it('every exception still names a dependency that exists, with a reason', () => {
    for (const [edge, reason] of EXCEPTIONS) {
      const [from = '', to = ''] = edge.split(' -> ');
      const s = services.find((x) => x.name === from);
      assert.ok(s, `exception ${edge}: no service ${from}`);
      const declared = DEPENDENCY_FIELDS.some((f) => Object.hasOwn(s.json[f] ?? {}, to));
      assert.ok(declared, `exception ${edge} is stale: ${from} no longer depends on ${to}`);
      assert.ok(reason.trim().length > 0, `exception ${edge} needs a reason`);
    }
  });
});
