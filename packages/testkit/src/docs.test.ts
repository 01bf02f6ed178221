// No document cites a file that is not there: every relative link, every backticked path that
// starts at the repository root or beside the document, and every `*.md` named in the text of
// the tree's Markdown files must exist. Build outputs (dist/, build/) are not checked: a fresh
// checkout does not have them.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', 'coverage']);

/** Backticked text that looks like a path of the tree but is not one. */
const NOT_PATHS = new Set([
  'services/status', // the Kubernetes subresource (docs/kube-bridge.md)
]);

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.name.startsWith('.') || SKIP_DIRS.has(e.name)) return [];
    const p = join(dir, e.name);
    if (e.isDirectory()) return markdownFiles(p);
    return e.isFile() && e.name.endsWith('.md') ? [p] : [];
  });
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/** The paths a document cites, each with the places it may be relative to. */
function citations(text: string): { cited: string; kind: 'link' | 'code' | 'md' }[] {
  const out: { cited: string; kind: 'link' | 'code' | 'md' }[] = [];
  for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = m[1]!.split('#')[0]!;
    if (target === '' || /^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
    out.push({ cited: target, kind: 'link' });
  }
  for (const m of text.matchAll(/`([^`\s]+)`/g)) {
    const t = m[1]!.replace(/[.,:;]+$/, '');
    if (!t.includes('/') || t.startsWith('/') || t.startsWith('~') || t.includes(':')) continue;
    // placeholders and patterns: <name>, *.ts, {a,b}, $VAR, a/.../b, NAME
    if (/[<>*{}$]|\.\.\.|(^|\/)[A-Z_]+(\/|$)/.test(t)) continue;
    out.push({ cited: t, kind: 'code' });
  }
  for (const m of text.matchAll(/(?<![\w./:-])([\w./-]+\.md)\b/g)) {
    if (!m[1]!.includes('://')) out.push({ cited: m[1]!, kind: 'md' });
  }
  return out;
}

function missing(doc: string): string[] {
  const here = dirname(doc);
  const bad: string[] = [];
  for (const { cited, kind } of citations(readFileSync(doc, 'utf8'))) {
    if (NOT_PATHS.has(cited)) continue;
    const segments = cited.split('/');
    if (segments.some((s) => SKIP_DIRS.has(s))) continue;
    let bases: string[];
    if (kind === 'link') {
      bases = [here];
    } else if (kind === 'md') {
      bases = [here, ROOT];
    } else {
      // a backticked path counts when it starts at a directory beside the document or at the root
      const first = segments[0]!;
      bases = [here, ROOT].filter((b) => first === '.' || first === '..' || isDir(join(b, first)));
      if (bases.length === 0) continue;
    }
    if (!bases.some((b) => existsSync(join(b, cited)))) bad.push(`${kind} ${cited}`);
  }
  return bad;
}

describe('documents cite files that exist', () => {
  const docs = markdownFiles(ROOT);

  it('finds the documents', () => {
    const names = docs.map((d) => relative(ROOT, d));
    assert.ok(names.includes('README.md') && names.includes(join('docs', 'cli.md')), names.join());
  });

  it('sees a link, a backticked path and a named document that are not there', () => {
    const kinds = citations(
      '[a](docs/gone.md#x) `packages/lab/src/gone.ts` see GONE.md, [u](https://x/y.md)',
    );
    assert.deepEqual(kinds, [
      { cited: 'docs/gone.md', kind: 'link' },
      { cited: 'packages/lab/src/gone.ts', kind: 'code' },
      { cited: 'docs/gone.md', kind: 'md' },
      { cited: 'GONE.md', kind: 'md' },
    ]);
  });

  for (const doc of docs) {
    it(relative(ROOT, doc), () => assert.deepEqual(missing(doc), []));
  }
});
