// `ciliate-test`: runs a package's compiled tests with node's test runner, tier by tier, and
// leaves the counts in .test-results.json for the root script to add up.
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

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
  await rm(join(cwd, RESULTS), { force: true });

  const all = await findTests(join(cwd, 'dist'));
  const selected: string[] = [];
  const skippedTiers = new Set<Tier>();
  for (const file of all) {
    const tier = tierOf(file);
    if (tier === undefined || !tiers.includes(tier)) continue;
    if (needsRoot(tier) && !isRoot) {
      skippedTiers.add(tier);
      continue;
    }
    selected.push(file);
  }
  for (const t of skippedTiers) {
    console.log(`ciliate-test: the ${t} tier needs root; its tests were not run`);
  }
  if (selected.length === 0) {
    console.log(`ciliate-test: no test files for tiers ${tiers.join(',')} in ${cwd}`);
    await writeResults(cwd, { passed: 0, failed: 0, skipped: 0, failures: [] });
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
