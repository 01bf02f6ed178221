#!/usr/bin/env node
// ciliate-datapath: the per-node datapath service process.
import { runMain } from '@ciliate/runtime';

import { datapathService } from './service.js';

await runMain(datapathService);
