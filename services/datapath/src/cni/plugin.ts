// The plugin's core: environment and stdin in, stdout text and exit code out. Everything but
// VERSION is validated here, then forwarded to the node agent, which does the work.
import { parseNetConf } from './config.js';
import { parseCniEnv } from './env.js';
import { asCniError, CniError, CniErrorCode } from './errors.js';
import type { AgentTransport } from './protocol.js';
import { PROTOCOL_VERSION } from './protocol.js';
import { formatResult } from './result.js';
import { checkCommandVersion, CURRENT_VERSION, versionResult } from './version.js';

export interface PluginOutput {
  stdout: string;
  exitCode: number;
}

function errorOutput(err: unknown, cniVersion: string): PluginOutput {
  const e = asCniError(err);
  return { stdout: JSON.stringify(e.toJson(cniVersion)) + '\n', exitCode: 1 };
}

/** The cniVersion to put in an error: the config's when it parses, else ours. */
function versionOf(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v !== '' ? v : CURRENT_VERSION;
  } catch {
    return CURRENT_VERSION;
  }
}

export async function runPlugin(
  env: Readonly<Record<string, string | undefined>>,
  stdin: string,
  transport: AgentTransport,
): Promise<PluginOutput> {
  const errVersion = versionOf(stdin);
  try {
    const cniEnv = parseCniEnv(env);
    const conf = parseNetConf(stdin, cniEnv.command);
    if (cniEnv.command === 'VERSION') {
      return { stdout: JSON.stringify(versionResult(conf.cniVersion)) + '\n', exitCode: 0 };
    }
    checkCommandVersion(cniEnv.command, conf.cniVersion);
    const { raw: _raw, ...config } = conf;
    let reply;
    try {
      reply = await transport(conf.socketPath, {
        v: PROTOCOL_VERSION,
        command: cniEnv.command,
        ...(cniEnv.containerId === undefined ? {} : { containerId: cniEnv.containerId }),
        ...(cniEnv.netns === undefined ? {} : { netns: cniEnv.netns }),
        ...(cniEnv.ifname === undefined ? {} : { ifname: cniEnv.ifname }),
        args: cniEnv.args,
        config,
      });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      // STATUS has its own "not ready" code; the other commands may be retried later.
      throw new CniError(
        cniEnv.command === 'STATUS' ? CniErrorCode.NOT_READY : CniErrorCode.TRY_AGAIN_LATER,
        `node agent unreachable at ${conf.socketPath}: ${why}`,
      );
    }
    if (!reply.ok) {
      throw new CniError(reply.error.code, reply.error.msg, reply.error.details);
    }
    if (cniEnv.command === 'ADD') {
      if (!reply.result) throw new CniError(CniErrorCode.INTERNAL, 'node agent returned no result');
      return {
        stdout: JSON.stringify(formatResult(reply.result, conf.cniVersion)) + '\n',
        exitCode: 0,
      };
    }
    return { stdout: '', exitCode: 0 };
  } catch (err) {
    return errorOutput(err, errVersion);
  }
}
