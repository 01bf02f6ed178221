// The run command sets up only what running Ciliate needs: no kube-apiserver (minutes to build)
// and no packages that only tests and benchmarks use; the test command sets up everything. Read
// from scripts/lib.sh itself, so the list stays the one place that says who needs what.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const LIB = join(ROOT, 'scripts', 'lib.sh');

function packagesFor(purpose: string): string[] {
  const out = execFileSync('bash', ['-c', `source "${LIB}"; system_packages_for ${purpose}`], {
    encoding: 'utf8',
  });
  return out.split('\n').filter((l) => l !== '');
}

/** The body of a shell function in lib.sh: the lines between `name() {` and the closing `}`. */
function body(name: string): string {
  const text = readFileSync(LIB, 'utf8');
  const start = text.indexOf(`\n${name}() {\n`);
  assert.ok(start >= 0, `${name} is defined in scripts/lib.sh`);
  return text.slice(start, text.indexOf('\n}\n', start));
}

describe("the run command's set-up", () => {
  it('installs no test-only package; the test command installs those too', () => {
    const run = packagesFor('run');
    const all = packagesFor('test');
    for (const p of ['etcd-server', 'openssl', 'iperf3']) {
      assert.ok(!run.includes(p), `${p} is for tests only`);
      assert.ok(all.includes(p), `the test command installs ${p}`);
    }
    assert.ok(run.includes('clang') && run.includes('containernetworking-plugins'));
    assert.deepEqual(
      run.filter((p) => !all.includes(p)),
      [],
      'everything the run command installs, the test command installs',
    );
  });

  it('refuses an unknown purpose, naming it', () => {
    assert.throws(
      () =>
        execFileSync('bash', ['-c', `source "${LIB}"; system_packages_for bench`], {
          stdio: 'pipe',
        }),
      (err: { stderr: Buffer }) => /must be run or test, not 'bench'/.test(err.stderr.toString()),
    );
  });

  it('does not build kube-apiserver; the test command does', () => {
    assert.ok(!body('setup_run').includes('ensure_kube_binaries'));
    assert.match(body('setup_run'), /ensure_system_packages run\n/);
    assert.ok(body('setup_all').includes('ensure_kube_binaries'));
    const script = (name: string) => readFileSync(join(ROOT, 'scripts', name), 'utf8');
    assert.match(script('run.sh'), /^setup_run$/m);
    assert.match(script('test.sh'), /^setup_all$/m);
  });
});
