// `npm run bench -w @ciliate/datapath [-- --only=crossnode|podsetup] [options]`: every datapath
// benchmark, each against its baseline in the same run. Needs root (namespaces, eBPF).
import { args } from './common.js';
import { runCrossNodeBench } from './crossnode.js';
import { runPodSetupBench } from './podsetup.js';

const argv = args();
const only = argv.get('only');
if (only !== undefined && only !== 'crossnode' && only !== 'podsetup') {
  throw new Error(`--only: Invalid value: "${only}": must be "crossnode" or "podsetup"`);
}
argv.delete('only');
if (process.getuid?.() !== 0) throw new Error('the datapath benchmarks need root (netns, eBPF)');
if (!only || only === 'crossnode') await runCrossNodeBench(argv);
if (!only || only === 'podsetup') await runPodSetupBench(argv);
