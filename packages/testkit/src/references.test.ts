import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { referenceMismatches } from './references.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('tsconfig references follow package.json', () => {
  it('agree for every workspace package in this tree', () => {
    assert.deepEqual(referenceMismatches(ROOT), []);
  });

  describe('in a made-up workspace', () => {
    const root = mkdtempSync(join(tmpdir(), `ciliate-refs-${process.pid}-`));
    after(() => rmSync(root, { recursive: true, force: true }));
    const write = (file: string, value: unknown) => {
      mkdirSync(dirname(join(root, file)), { recursive: true });
      writeFileSync(join(root, file), JSON.stringify(value));
    };
    write('package.json', { workspaces: ['libs/*', 'apps/*'] });
    write('libs/a/package.json', { name: '@ciliate/a' });
    write('libs/a/tsconfig.json', {});
    write('libs/b/package.json', { name: '@ciliate/b', dependencies: { '@ciliate/a': '*' } });
    write('libs/b/tsconfig.json', { references: [{ path: '../a' }] });
    write('apps/x/package.json', {
      name: '@ciliate/x',
      dependencies: { '@ciliate/b': '*', other: '*' },
      devDependencies: { '@ciliate/a': '*' },
    });

    it('accepts references that match, comments and all', () => {
      writeFileSync(
        join(root, 'apps/x/tsconfig.json'),
        '{\n  // both\n  "references": [{ "path": "../../libs/a" }, { "path": "../../libs/b/" }]\n}\n',
      );
      assert.deepEqual(referenceMismatches(root), []);
    });

    it('names the package and the reference a dependency lacks (devDependencies count)', () => {
      write('apps/x/tsconfig.json', { references: [{ path: '../../libs/b' }] });
      assert.deepEqual(referenceMismatches(root), [
        '@ciliate/x (apps/x): tsconfig.json lacks the reference { "path": "../../libs/a" } for its dependency @ciliate/a',
      ]);
    });

    it('names a reference that is no dependency, and one that is no package', () => {
      write('apps/x/tsconfig.json', {
        references: [{ path: '../../libs/a' }, { path: '../../libs/b' }, { path: '../../gone' }],
      });
      write('libs/a/tsconfig.json', { references: [{ path: '../b' }] });
      assert.deepEqual(referenceMismatches(root), [
        '@ciliate/a (libs/a): tsconfig.json references ../b (@ciliate/b), which package.json does not list as a dependency',
        '@ciliate/x (apps/x): tsconfig.json references ../../gone, which is no workspace package',
      ]);
    });
  });
});
