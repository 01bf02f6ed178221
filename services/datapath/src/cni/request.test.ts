// parseAgentRequest: the agent's one check of a request, whoever wrote it. What the plugin sends
// passes unchanged; everything the plugin would have refused is refused with the plugin's code
// and the field named, also when written straight to the socket.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CniError } from './errors.js';
import { runPlugin } from './plugin.js';
import type { AgentRequest } from './protocol.js';
import { parseAgentRequest } from './request.js';

const ENV = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'c1',
  CNI_NETNS: '/var/run/netns/p1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web',
};
const DOC = {
  cniVersion: '1.1.0',
  name: 'ciliate',
  type: 'ciliate-cni',
  socketPath: '/run/x.sock',
  mtu: 1400,
  dns: { nameservers: ['10.96.0.10'] },
  prevResult: { cniVersion: '1.1.0', interfaces: [{ name: 'lo' }], ips: [] },
};

/** What the plugin sends for this environment and config. */
async function sent(env: Record<string, string>, doc: object): Promise<AgentRequest> {
  let req: AgentRequest | undefined;
  await runPlugin(env, JSON.stringify(doc), (_p, r) => {
    req = r;
    return Promise.resolve({ ok: true });
  });
  assert.ok(req, 'the plugin sent a request');
  return req;
}

const valid = (over: Record<string, unknown> = {}) => ({
  v: 1,
  command: 'ADD',
  containerId: 'c1',
  netns: '/var/run/netns/p1',
  ifname: 'eth0',
  args: { ignoreUnknown: true, raw: { IgnoreUnknown: '1' } },
  config: { cniVersion: '1.1.0', name: 'ciliate', type: 'ciliate-cni' },
  ...over,
});

function refused(input: unknown, code: number, msg: RegExp): void {
  assert.throws(
    () => parseAgentRequest(input),
    (e: unknown) => {
      assert.ok(e instanceof CniError, String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, msg);
      return true;
    },
  );
}

describe('parseAgentRequest', () => {
  it('passes what the plugin sends unchanged, for every command', async () => {
    const gcDoc = { ...DOC, 'cni.dev/valid-attachments': [{ containerID: 'k', ifname: 'eth0' }] };
    for (const [env, doc] of [
      [ENV, DOC],
      [{ ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '' }, DOC],
      [{ ...ENV, CNI_COMMAND: 'CHECK' }, DOC],
      [{ CNI_COMMAND: 'GC', CNI_PATH: '/x' }, gcDoc],
      [{ CNI_COMMAND: 'STATUS', CNI_PATH: '/x' }, DOC],
    ] as const) {
      const req = await sent(env, doc);
      assert.deepEqual(parseAgentRequest(JSON.parse(JSON.stringify(req))), req, env.CNI_COMMAND);
    }
  });

  // [case, request, CNI code, message]
  const cases: [string, unknown, number, RegExp][] = [
    ['not an object', [], 6, /^request: must be a JSON object/],
    ['null', null, 6, /^request: must be a JSON object/],
    ['a string', 'ADD', 6, /^request: must be a JSON object/],
    ['no version', valid({ v: undefined }), 1, /^request\.v: /],
    ['another version', valid({ v: 2 }), 1, /^request\.v: plugin protocol version 2 is not 1/],
    ['an unknown field', valid({ exec: 'rm -rf /' }), 2, /^request\.exec: Unsupported field/],
    ['a prototype key', JSON.parse('{"v":1,"__proto__":{"x":1}}'), 2, /Unsupported field/],
    ['no command', valid({ command: undefined }), 4, /^CNI_COMMAND: must be one of/],
    ['VERSION', valid({ command: 'VERSION' }), 4, /^CNI_COMMAND: Invalid value: "\\"VERSION\\""/],
    ['a lower-case command', valid({ command: 'add' }), 4, /^CNI_COMMAND/],
    ['a command object', valid({ command: { toString: 1 } }), 4, /^CNI_COMMAND/],
    [
      'missing attachment fields',
      { v: 1, command: 'ADD', config: {} },
      4,
      /^CNI_CONTAINERID, CNI_IFNAME, CNI_NETNS: Required value: ADD needs these variables/,
    ],
    [
      'DEL without ifname',
      valid({ command: 'DEL', ifname: undefined }),
      4,
      /^CNI_IFNAME: Required/,
    ],
    [
      'a path in the container ID',
      valid({ containerId: '../../etc/passwd' }),
      4,
      /^CNI_CONTAINERID/,
    ],
    ['a slash in the container ID', valid({ containerId: 'a/b' }), 4, /^CNI_CONTAINERID/],
    ['a container ID number', valid({ containerId: 7 }), 4, /^CNI_CONTAINERID: .*must be a string/],
    ['an interface with a slash', valid({ ifname: 'eth0/..' }), 4, /^CNI_IFNAME/],
    ['an interface name too long', valid({ ifname: 'x'.repeat(16) }), 4, /^CNI_IFNAME/],
    ['an interface ".."', valid({ ifname: '..' }), 4, /^CNI_IFNAME/],
    ['a relative netns', valid({ netns: 'proc/1/ns/net' }), 4, /^CNI_NETNS: .*absolute path/],
    ['a netns list', valid({ netns: ['/a'] }), 4, /^CNI_NETNS: .*must be a string/],
    ['args not an object', valid({ args: 'K8S_POD_NAME=x' }), 6, /^request\.args/],
    ['args without raw', valid({ args: { podName: 'x' } }), 6, /^request\.args/],
    [
      'an args value with ";"',
      valid({ args: { raw: { K8S_POD_NAME: 'a;IgnoreUnknown=1' } } }),
      4,
      /^CNI_ARGS/,
    ],
    ['an args key with "="', valid({ args: { raw: { 'A=B': 'c' } } }), 4, /^CNI_ARGS/],
    ['an args value not text', valid({ args: { raw: { K8S_POD_NAME: 1 } } }), 4, /^CNI_ARGS/],
    [
      'an unknown args key without IgnoreUnknown',
      valid({ args: { ignoreUnknown: true, raw: { EVIL: '1' } } }),
      2,
      /^CNI_ARGS: unsupported key "EVIL"/,
    ],
    ['no config', valid({ config: undefined }), 6, /^request\.config: must be a JSON object/],
    ['config a list', valid({ config: [] }), 6, /^request\.config/],
    ['config without cniVersion', valid({ config: { name: 'n', type: 't' } }), 7, /^cniVersion/],
    [
      'an unsupported cniVersion',
      valid({ config: { cniVersion: '9.9.9', name: 'n', type: 't' } }),
      1,
      /^cniVersion: Unsupported value/,
    ],
    [
      'CHECK on 0.3.1',
      valid({ command: 'CHECK', config: { cniVersion: '0.3.1', name: 'n', type: 't' } }),
      1,
      /CHECK needs spec version 0\.4\.0/,
    ],
    [
      'a delegated ipam',
      valid({ config: { cniVersion: '1.1.0', name: 'n', type: 't', ipam: { type: 'dhcp' } } }),
      2,
      /^ipam: Unsupported field/,
    ],
    [
      'a bad mtu',
      valid({ config: { cniVersion: '1.1.0', name: 'n', type: 't', mtu: 1e9 } }),
      7,
      /^mtu: /,
    ],
    [
      'a relative socket path',
      valid({ config: { cniVersion: '1.1.0', name: 'n', type: 't', socketPath: 'x.sock' } }),
      7,
      /^socketPath: /,
    ],
    [
      'runtimeConfig.ips',
      valid({
        config: { cniVersion: '1.1.0', name: 'n', type: 't', runtimeConfig: { ips: ['1.2.3.4'] } },
      }),
      2,
      /^runtimeConfig\.ips/,
    ],
    [
      'GC without the valid attachments (it would remove every pod)',
      {
        v: 1,
        command: 'GC',
        args: { raw: {} },
        config: { cniVersion: '1.1.0', name: 'n', type: 't' },
      },
      7,
      /^cni\.dev\/valid-attachments: Required value for GC/,
    ],
    [
      'GC with a malformed list',
      {
        v: 1,
        command: 'GC',
        config: {
          cniVersion: '1.1.0',
          name: 'n',
          type: 't',
          validAttachments: [{ containerID: 1 }],
        },
      },
      7,
      /^cni\.dev\/valid-attachments\[0\]/,
    ],
  ];
  for (const [what, input, code, msg] of cases) {
    it(`refuses ${what} with code ${code}`, () => refused(input, code, msg));
  }

  it('GC and STATUS keep no attachment fields, as the plugin reads none for them', () => {
    const gc = parseAgentRequest(
      valid({
        command: 'GC',
        config: { cniVersion: '1.1.0', name: 'n', type: 't', validAttachments: [] },
      }),
    );
    assert.equal(gc.containerId, undefined);
    assert.equal(gc.netns, undefined);
    assert.deepEqual(gc.config.validAttachments, []);
  });

  it('derives the pod arguments from the pairs, not from what the request claims', () => {
    const req = parseAgentRequest(
      valid({
        args: {
          ignoreUnknown: true,
          podName: 'someone-else',
          raw: { IgnoreUnknown: '1', K8S_POD_NAME: 'web', K8S_POD_NAMESPACE: 'prod' },
        },
      }),
    );
    assert.equal(req.args.podName, 'web');
    assert.equal(req.args.podNamespace, 'prod');
  });
});
