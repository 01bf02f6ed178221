#!/usr/bin/env node
// ciliate-ipam: the IPAM service process.
import { runMain } from '@ciliate/runtime';

import { ipamService } from './service/service.js';

await runMain(ipamService);
