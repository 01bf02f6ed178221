#!/usr/bin/env node
import { runMain } from '@ciliate/runtime';

import { kubeBridgeService } from './service.js';

await runMain(kubeBridgeService);
