// The agent's one check of a request on its socket, whoever wrote it: the full plugin
// (dist/cni/main.js) sends one after its own checks, the plugin core the agent runs for the
// native front builds one, and anyone who can open the socket can write one by hand. Each field
// gets the check the plugin gives the variable or config key it came from (checkAttachment,
// parseCniArgs, netConfOf, checkCommandVersion), so no way in skips one: a raw GC without the
// list of valid attachments is refused as the plugin refuses it, instead of removing every pod.
import { netConfOf } from './config.js';
import { checkAttachment, parseCniArgs, type CniArgs } from './env.js';
import { CniError, CniErrorCode, invalidEnv } from './errors.js';
import { PROTOCOL_VERSION, type AgentRequest } from './protocol.js';
import { checkCommandVersion } from './version.js';

const COMMANDS: readonly AgentRequest['command'][] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS'];
const FIELDS = new Set(['v', 'command', 'containerId', 'netns', 'ifname', 'args', 'config']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodeError(msg: string): CniError {
  return new CniError(CniErrorCode.DECODE_FAILURE, msg);
}

/** CNI_ARGS as the plugin parsed it: checked again from the pairs, as CNI_ARGS text would be. */
function argsOf(v: unknown): CniArgs {
  if (v === undefined) return parseCniArgs(undefined);
  if (!isObject(v) || !isObject(v.raw))
    throw decodeError('request.args: must be {raw: {KEY: VALUE}}');
  const pairs: string[] = [];
  for (const [k, value] of Object.entries(v.raw)) {
    // what CNI_ARGS text cannot carry cannot have come from a runtime
    if (typeof value !== 'string' || k === '' || /[=;]/.test(k) || value.includes(';')) {
      throw invalidEnv(
        'CNI_ARGS',
        `${k}=${String(value)}`,
        'keys and values must be strings without ";" (and keys without "=")',
      );
    }
    pairs.push(`${k}=${value}`);
  }
  return parseCniArgs(pairs.join(';'));
}

/** Checks a decoded request; throws the CNI error the plugin would give for the same input. */
export function parseAgentRequest(raw: unknown): AgentRequest {
  if (!isObject(raw)) throw decodeError('request: must be a JSON object');
  if (raw.v !== PROTOCOL_VERSION) {
    throw new CniError(
      CniErrorCode.INCOMPATIBLE_VERSION,
      `request.v: plugin protocol version ${String(JSON.stringify(raw.v))} is not ${PROTOCOL_VERSION}`,
    );
  }
  for (const k of Object.keys(raw)) {
    if (!FIELDS.has(k))
      throw new CniError(CniErrorCode.UNSUPPORTED_FIELD, `request.${k}: Unsupported field`);
  }
  const command = raw.command;
  if (typeof command !== 'string' || !(COMMANDS as readonly string[]).includes(command)) {
    throw invalidEnv(
      'CNI_COMMAND',
      command === undefined ? undefined : String(JSON.stringify(command)),
      `must be one of ${COMMANDS.join(', ')}`,
    );
  }
  const cmd = command as AgentRequest['command'];
  const attachment = checkAttachment(cmd, {
    containerId: raw.containerId,
    ifname: raw.ifname,
    netns: raw.netns,
  });
  const args = argsOf(raw.args);
  if (!isObject(raw.config)) throw decodeError('request.config: must be a JSON object');
  // the plugin sends the parsed config; as a document its list is `cni.dev/valid-attachments`
  const { validAttachments, ...rest } = raw.config;
  const doc =
    validAttachments === undefined
      ? rest
      : { ...rest, 'cni.dev/valid-attachments': validAttachments };
  const { raw: _doc, ...config } = netConfOf(doc, cmd);
  checkCommandVersion(cmd, config.cniVersion);
  return { v: PROTOCOL_VERSION, command: cmd, ...attachment, args, config };
}
