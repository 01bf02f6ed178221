// Where the features that are not built yet attach to the datapath service: Service
// load-balancing (today kube-proxy's netfilter rules translate Services, which is why legacy
// host routing is the default) and network policy (today nothing enforces it: every identity may
// talk to every other). A hook is started after the endpoints, the ipcache mirror and the routes,
// with what they started, and stopped before them. The service passes NO_HOOKS: no
// implementation exists, and the start-up log says so rather than pretending.
import type { Component, Logger } from '@ciliate/runtime';
import type { ResourceStore } from '@ciliate/store';

import type { LocalDatapath } from '../endpoints/component.js';
import type { IpcacheMirror } from '../ipcache/mirror.js';

/** What a hook is given: the node's started datapath and its view of the cluster. */
export interface DatapathHookInputs {
  local: LocalDatapath;
  mirror: IpcacheMirror;
  store: ResourceStore;
  log: Logger;
}

/** Makes the hook's component (its start and stop) from the started parts. */
export type DatapathHook = (inputs: DatapathHookInputs) => Omit<Component, 'name'>;

export interface DatapathHooks {
  /** Translates Service addresses to backends in the datapath (Cilium's kube-proxy replacement). */
  serviceLoadBalancing?: DatapathHook;
  /** Enforces network policy between identities (Cilium's policy maps). */
  policy?: DatapathHook;
}

/** The hooks of this tree: none is built. */
export const NO_HOOKS: DatapathHooks = {};

/** Why a slot left empty matters, for the start-up log. */
export const MISSING_HOOK: Record<keyof DatapathHooks, string> = {
  serviceLoadBalancing:
    'Service load-balancing is not built into the datapath: Services work through kube-proxy on the node',
  policy: 'network policy is not built: no traffic between identities is denied',
};
