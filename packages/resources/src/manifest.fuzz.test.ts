// Fuzzing the manifest reader: whatever text or value comes in, the answer is objects or typed
// problems, never an exception and never an "internal error" from a validator.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';
import YAML from 'yaml';

import { ManifestErrorCode } from './errors.js';
import { parseManifests, toYaml, validateObject, type ParseResult } from './manifest.js';
import { supportedKinds } from './registry.js';
import { EXAMPLES } from './testing/examples.js';
import { seedManifests } from './testing/shared.js';

const CODES = new Set<string>(Object.values(ManifestErrorCode));
const RUNS = Number(process.env.CILIATE_FUZZ_RUNS ?? 300);

function checkResult(r: ParseResult): void {
  if (r.ok) return;
  assert.ok(r.errors.length > 0);
  for (const e of r.errors) {
    assert.ok(CODES.has(e.code), `unknown code ${e.code}`);
    assert.doesNotMatch(e.message, /internal error/, e.message);
    assert.match(e.message, /^error: error (validating|parsing) "/);
  }
}

/** Accepted objects must survive toYaml -> parse unchanged. */
function checkRoundTrip(r: ParseResult): void {
  if (r.objects.length === 0) return;
  const again = parseManifests(toYaml(r.objects), 'again.yaml');
  assert.ok(again.ok, again.ok ? '' : again.errors.map((e) => e.message).join('\n'));
  assert.deepEqual(again.objects, r.objects);
}

function parseChecked(text: string): ParseResult {
  let r: ParseResult | undefined;
  assert.doesNotThrow(() => {
    r = parseManifests(text, 'fuzz.yaml');
  });
  const result = r as ParseResult;
  checkResult(result);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Mutations of known-good manifests.

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function paths(
  v: Json,
  prefix: (string | number)[] = [],
  out: (string | number)[][] = [],
): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...prefix, i], out));
  else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) paths(x, [...prefix, k], out);
  return out;
}

type Mutation =
  | { op: 'set'; at: number; value: Json }
  | { op: 'delete'; at: number }
  | { op: 'add'; at: number; key: string; value: Json };

function applyMutation(doc: Json, m: Mutation): Json {
  const all = paths(doc);
  const path = all[m.at % all.length] ?? [];
  const root: Json = structuredClone(doc);
  if (path.length === 0) {
    if (m.op === 'set') return m.value;
    if (m.op === 'add' && root !== null && typeof root === 'object' && !Array.isArray(root))
      root[m.key] = m.value;
    return root;
  }
  let parent: Json = root;
  for (const seg of path.slice(0, -1))
    parent = (parent as Record<string | number, Json>)[seg] as Json;
  const last = path[path.length - 1] as string | number;
  const container = parent as Record<string | number, Json>;
  if (m.op === 'set') container[last] = m.value;
  else if (m.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete container[last];
  } else {
    const target = container[last];
    if (Array.isArray(target)) target.push(m.value);
    else if (target !== null && typeof target === 'object') target[m.key] = m.value;
    else container[last] = { [m.key]: m.value };
  }
  return root;
}

// Values that hit validators' edges: ports, CIDRs, names, selector operators, odd types.
const interestingValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(
    0,
    -1,
    65535,
    65536,
    4294967296,
    1.5,
    '',
    ' ',
    '0',
    '80',
    'http',
    '10.0.0.0/8',
    '10.0.0.0/33',
    '::/0',
    '10.0.0.1',
    'fe80::1',
    'In',
    'NotIn',
    'Exists',
    'Gt',
    'TCP',
    'ICMP',
    'k8s:app',
    '$host',
    'reserved:host',
    'a/b/c',
    'UPPER',
    null,
    true,
    false,
    [],
    {},
    [{}],
    { matchLabels: {} },
    { key: 'a', operator: 'In' },
    { cidr: '10.0.0.0/24', start: '10.0.0.1' },
    'None',
    'LoadBalancer',
  ),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: interestingValue }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('add' as const),
    at: fc.nat(),
    key: fc.oneof(
      fc.constantFrom('spec', 'status', 'metadata', 'foo', 'items', 'name', 'cidr'),
      fc.string({ maxLength: 8 }),
    ),
    value: interestingValue,
  }),
);

function knownGoodDocuments(): Json[] {
  const docs: Json[] = [];
  const texts = [...Object.values(EXAMPLES), ...seedManifests().map((s) => s.text)];
  for (const t of texts) for (const d of YAML.parseAllDocuments(t)) docs.push(d.toJS() as Json);
  return docs.filter((d) => d !== null);
}

describe('fuzzing the manifest reader', () => {
  it('arbitrary strings never make it throw', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), (s) => void parseChecked(s)),
      { numRuns: RUNS },
    );
  });

  it('YAML-shaped noise never makes it throw', () => {
    const token = fc.constantFrom(
      'apiVersion: v1\n',
      'kind: Service\n',
      'kind: List\n',
      'items:\n',
      'metadata:\n',
      '  name: a\n',
      'spec:\n',
      '---\n',
      '- ',
      '  ',
      ': ',
      '{',
      '}',
      '[',
      ']',
      ',',
      '&a ',
      '*a',
      '<<: ',
      '!!str ',
      '!!binary ',
      '? ',
      '|\n',
      '"',
      "'",
      '#',
      '%YAML 1.1\n',
      '~',
      '.inf',
      '\t',
      '\n',
      'ports: [{port: 0}]\n',
      'cidr: 10.0.0.0/33\n',
    );
    fc.assert(
      fc.property(
        fc.array(token, { maxLength: 40 }).map((a) => a.join('')),
        (s) => void parseChecked(s),
      ),
      {
        numRuns: RUNS,
      },
    );
  });

  it('random JSON values, as YAML and as JSON, give objects or typed problems', () => {
    const kinds = supportedKinds();
    const withType = fc
      .tuple(
        fc.constantFrom(...kinds),
        fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 3 })),
      )
      .map(([k, rest]) => ({
        ...rest,
        apiVersion: k.group === '' ? k.versions[0]?.name : `${k.group}/${k.versions[0]?.name}`,
        kind: k.kind,
      }));
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 4 }), withType), (v) => {
        checkRoundTrip(parseChecked(JSON.stringify(v)));
        checkRoundTrip(parseChecked(YAML.stringify(v)));
        const r = validateObject(v);
        if (!r.ok) assert.doesNotMatch(r.problem.message, /internal error/);
      }),
      { numRuns: RUNS },
    );
  });

  it('mutated seed and example manifests give objects or typed problems, and accepted ones round-trip', () => {
    const docs = knownGoodDocuments();
    assert.ok(docs.length > 10);
    fc.assert(
      fc.property(
        fc.constantFrom(...docs),
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        (doc, mutations) => {
          const mutated = mutations.reduce(applyMutation, doc);
          const r = parseChecked(YAML.stringify(mutated));
          checkRoundTrip(r);
          checkRoundTrip(parseChecked(JSON.stringify(mutated)));
        },
      ),
      { numRuns: RUNS * 3 },
    );
  });
});
