// What the plugin executable and the node agent say to each other over the unix socket: one
// JSON request per connection, one JSON reply, newline terminated.
import type { CniArgs, CniCommand } from './env.js';
import type { CniErrorJson } from './errors.js';
import type { NetConf } from './config.js';
import type { CniResult } from './result.js';

export const PROTOCOL_VERSION = 1;

export interface AgentRequest {
  v: typeof PROTOCOL_VERSION;
  command: Exclude<CniCommand, 'VERSION'>;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args: CniArgs;
  config: Omit<NetConf, 'raw'>;
}

export type AgentReply =
  { ok: true; result?: CniResult } | { ok: false; error: Omit<CniErrorJson, 'cniVersion'> };

/**
 * A whole plugin invocation, sent by the native executable (src/cni/shim.c) instead of an
 * AgentRequest: the agent runs the plugin core on it and answers `<exit code>\n<stdout>`
 * (not JSON) before closing the connection.
 */
export interface PluginInvocation {
  v: typeof PROTOCOL_VERSION;
  invoke: { env: Record<string, string>; stdin: string };
}

/** How the plugin reaches the agent (a unix socket in production, a function in unit tests). */
export type AgentTransport = (socketPath: string, request: AgentRequest) => Promise<AgentReply>;
