// The full plugin in one process: parses and checks the invocation, asks the agent over the
// unix socket (one AgentRequest), prints the result. The executable's front (front.ts) uses it
// whenever it cannot hand the whole invocation to the agent.
import { runPlugin } from './plugin.js';
import { unixTransport } from './socket.js';

export function runPluginMain(stdin: string): Promise<{ stdout: string; exitCode: number }> {
  return runPlugin(process.env, stdin, unixTransport());
}
