// ciliate-identity: wiring only; see service/service.ts.
import { runMain } from '@ciliate/runtime';

import { identityService } from './service/service.js';

await runMain(identityService);
