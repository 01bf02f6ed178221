// The lab's kubelet process: wiring only; see service.ts and kubelet.ts.
import { runMain } from '@ciliate/runtime';

import { labService } from './service.js';

await runMain(labService);
