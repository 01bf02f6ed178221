// `ciliate-test`: runs a package's compiled tests with node's test runner, tier by tier, and
// leaves the counts in .test-results.json for the root script to add up.
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { countTestDeclarations } from './count-tests.js';
import type { TestCounts } from './reporter.js';
import { needsRoot, parseTiers, tierOf, type Tier } from './tiers.js';

const RESULTS = '.test-results.json';

async function findTests(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isFile() || !e.name.endsWith('.test.js')) continue;
    out.push(join(e.parentPath ?? dir, e.name));
  }
  return out.sort();
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

export async function main(args: string[]): Promise<number> {
  const cwd = process.cwd();
  const tiers = parseTiers(argValue(args, '--tier') ?? process.env.CILIATE_TEST_TIERS);
  const isRoot = process.getuid?.() === 0;
  // The test task's cache key includes CILIATE_TEST_USER (turbo.json): a value that lies about
  // this process would let turbo replay a run made with other rights.
  const user = isRoot ? 'root' : 'unprivileged';
  const declared = process.env.CILIATE_TEST_USER;
  if (declared !== undefined && declared !== '' && declared !== user) {
    console.error(
      `ciliate-test: CILIATE_TEST_USER: Invalid value: "${declared}": this process runs as ${user}`,
    );
    return 2;
  }
  await rm(join(cwd, RESULTS), { force: true });

  const all = await findTests(join(cwd, 'dist'));
  const selected: string[] = [];
  const notRun = new Map<Tier, string[]>();
  for (const file of all) {
    const tier = tierOf(file);
    if (tier === undefined || !tiers.includes(tier)) continue;
    if (needsRoot(tier) && !isRoot) {
      notRun.set(tier, [...(notRun.get(tier) ?? []), file]);
      continue;
    }
    selected.push(file);
  }
  // Tests of a tier this user may not run are skipped, and counted as such, so the closing line
  // never looks complete when it is not.
  let skippedNotRun = 0;
  for (const [tier, files] of notRun) {
    let tests = 0;
    let inLoops = 0;
    for (const f of files) {
      const c = countTestDeclarations(await readFile(f, 'utf8'), f);
      tests += c.tests;
      inLoops += c.inLoops;
    }
    skippedNotRun += tests;
    const loops = inLoops > 0 ? `; ${inLoops} declared in loops, counted once each` : '';
    console.log(
      `ciliate-test: the ${tier} tier needs root; ${tests} tests in ${files.length} file${files.length === 1 ? '' : 's'} not run, counted as skipped (test declarations in the files${loops})`,
    );
  }
  if (selected.length === 0) {
    console.log(`ciliate-test: no test files to run for tiers ${tiers.join(',')} in ${cwd}`);
    const counts = { passed: 0, failed: 0, skipped: skippedNotRun, failures: [] };
    await writeResults(cwd, counts);
    console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
    return 0;
  }

  const reporter = fileURLToPath(new URL('./reporter.js', import.meta.url));
  const nodeArgs = [
    '--enable-source-maps',
    '--test',
    '--test-timeout=600000',
    '--test-reporter=spec',
    '--test-reporter-destination=stdout',
    `--test-reporter=${reporter}`,
    `--test-reporter-destination=${RESULTS}`,
    ...selected.map((f) => relative(cwd, f)),
  ];
  const code = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, nodeArgs, { cwd, stdio: 'inherit' });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
  const counts = await readResults(cwd);
  if (skippedNotRun > 0) {
    counts.skipped += skippedNotRun;
    await writeResults(cwd, counts);
  }
  console.log(`${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped`);
  return code === 0 && counts.failed === 0 ? 0 : 1;
}

async function readResults(cwd: string): Promise<TestCounts> {
  try {
    return JSON.parse(await readFile(join(cwd, RESULTS), 'utf8')) as TestCounts;
  } catch {
    // A runner that died before reporting is a failure, not an empty success.
    const counts = {
      passed: 0,
      failed: 1,
      skipped: 0,
      failures: ['test runner produced no results'],
    };
    await writeResults(cwd, counts);
    return counts;
  }
}

async function writeResults(cwd: string, counts: TestCounts): Promise<void> {
  await writeFile(join(cwd, RESULTS), JSON.stringify(counts) + '\n');
}
