// The lab's own service (component `lab`): the kubelet for every lab node, and a watch over the
// lab's processes so that `ciliate status` reports any one of them that died.
import { ConfigError, setting, type ServiceDefinition } from '@ciliate/runtime';
import { ResourceStore } from '@ciliate/store';

import { readManifest } from '../state.js';
import { isAlive } from '../sys.js';
import { Kubelet } from './kubelet.js';

const settings = {
  labDir: setting.string({
    flag: 'lab-dir',
    env: 'CILIATE_LAB_DIR',
    required: true,
    describe: "the lab's state directory (holds lab.json)",
  }),
  podRetryBase: setting.duration({
    flag: 'pod-retry-base',
    env: 'CILIATE_LAB_POD_RETRY_BASE',
    default: 1000,
    minMs: 10,
    describe: 'first delay before a pod whose set-up failed is set up again (then doubling)',
  }),
  podRetryMax: setting.duration({
    flag: 'pod-retry-max',
    env: 'CILIATE_LAB_POD_RETRY_MAX',
    default: 30_000,
    minMs: 10,
    describe: 'longest delay between set-up attempts of a failing pod',
  }),
};

export const labService: ServiceDefinition<typeof settings> = {
  component: 'lab',
  role: 'kubelet',
  version: '0.1.0',
  description: "The local lab's kubelet and process watch",
  settings,
  async setup(ctx) {
    const dir = ctx.config.labDir;
    const manifest = readManifest(dir);
    if (!manifest) throw new Error(`--lab-dir: no lab.json in ${dir}`);
    const store = await ResourceStore.open(ctx.nc);
    const { podRetryBase, podRetryMax } = ctx.config;
    if (podRetryMax < podRetryBase) {
      throw new ConfigError(
        'pod-retry-max',
        `--pod-retry-max (${podRetryMax}ms) is shorter than --pod-retry-base (${podRetryBase}ms)`,
      );
    }
    const kubelet = new Kubelet({
      store,
      manifest,
      dir,
      log: ctx.logger('kubelet'),
      retry: { baseMs: podRetryBase, maxMs: podRetryMax },
    });
    ctx.readiness.add('pods', () =>
      kubelet.synced ? { ok: true } : { ok: false, detail: 'pod informer not synced' },
    );
    ctx.readiness.add('processes', () => {
      const m = readManifest(dir);
      const dead = (m?.processes ?? [])
        .filter((p) => p.pid !== process.pid && !isAlive(p))
        .map((p) => `${p.service}${p.node ? `@${p.node}` : ''} (pid ${p.pid}) is not running`);
      return dead.length === 0
        ? { ok: true }
        : {
            ok: false,
            detail: `${dead.join(', ')}; restart with: ciliate lab up --name ${manifest.name}`,
          };
    });
    ctx.add({ name: 'kubelet', start: () => kubelet.start(), stop: () => kubelet.stop() });
  },
};
