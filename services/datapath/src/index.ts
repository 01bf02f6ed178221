// @ciliate/datapath: the per-node datapath service. What starts it (src/main.ts, the lab, and
// tests that run it in-process) needs the definition, its settings and the plug-in points;
// everything else is the service's own (the pure planning is @ciliate/datapath-core).
export { DATAPATH_VERSION, datapathService, datapathSettings, setupDatapath } from './service.js';
export type { DatapathSettings } from './service.js';
export { NO_HOOKS } from './hooks/hooks.js';
export type { DatapathHook, DatapathHookInputs, DatapathHooks } from './hooks/hooks.js';
