// The network config on stdin: versions, required fields, unsupported fields, GC attachments.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_SOCKET_PATH, parseNetConf } from './config.js';
import { CniError } from './errors.js';
import { checkCommandVersion, versionResult } from './version.js';

const BASE = { cniVersion: '1.1.0', name: 'ciliate', type: 'ciliate-cni' };
const conf = (o: Record<string, unknown>) => JSON.stringify({ ...BASE, ...o });

function err(fn: () => unknown): CniError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CniError, String(e));
    return e;
  }
  assert.fail('expected an error');
}

describe('network config', () => {
  it('a minimal config gets the default socket', () => {
    const c = parseNetConf(conf({}), 'ADD');
    assert.equal(c.socketPath, DEFAULT_SOCKET_PATH);
    assert.equal(c.cniVersion, '1.1.0');
    assert.deepEqual(c.runtimeConfig, {});
  });

  const table: [string, string, string, number, RegExp][] = [
    ['malformed JSON', '{"cniVersion": ', 'ADD', 6, /not valid JSON/],
    ['a JSON list', '[]', 'ADD', 6, /JSON object/],
    [
      'unsupported cniVersion',
      conf({ cniVersion: '2.0.0' }),
      'ADD',
      1,
      /^cniVersion: Unsupported value: "2.0.0"/,
    ],
    ['0.2.0 (no interfaces in results)', conf({ cniVersion: '0.2.0' }), 'ADD', 1, /cniVersion/],
    [
      'missing cniVersion',
      conf({ cniVersion: undefined }),
      'ADD',
      7,
      /^cniVersion: Required value/,
    ],
    ['missing name', conf({ name: undefined }), 'ADD', 7, /^name: Required value/],
    ['bad name', conf({ name: '-x' }), 'ADD', 7, /^name: Invalid value: "-x"/],
    ['missing type', conf({ type: undefined }), 'DEL', 7, /^type: Required value/],
    [
      'relative socketPath',
      conf({ socketPath: 'cni.sock' }),
      'ADD',
      7,
      /^socketPath: Invalid value/,
    ],
    ['mtu too small', conf({ mtu: 100 }), 'ADD', 7, /^mtu: Invalid value: 100/],
    [
      'dns.nameservers not a list',
      conf({ dns: { nameservers: '1.1.1.1' } }),
      'ADD',
      7,
      /^dns.nameservers/,
    ],
    ['prevResult.ips not a list', conf({ prevResult: { ips: {} } }), 'ADD', 7, /^prevResult.ips/],
    ['an unknown field', conf({ bridge: 'br0' }), 'ADD', 2, /^bridge: Unsupported field: "br0"/],
    [
      'a delegated ipam section',
      conf({ ipam: { type: 'host-local' } }),
      'ADD',
      2,
      /^ipam: Unsupported field.*node agent/,
    ],
    [
      'runtimeConfig.ips',
      conf({ runtimeConfig: { ips: ['10.0.0.5/24'] } }),
      'ADD',
      2,
      /^runtimeConfig.ips/,
    ],
    [
      'GC without valid attachments',
      conf({}),
      'GC',
      7,
      /cni.dev\/valid-attachments: Required value/,
    ],
    [
      'GC with a bad attachment',
      conf({ 'cni.dev/valid-attachments': [{ containerID: 1 }] }),
      'GC',
      7,
      /valid-attachments\[0\]/,
    ],
  ];
  for (const [name, stdin, cmd, code, msg] of table) {
    it(`${name}: code ${code}`, () => {
      const e = err(() => parseNetConf(stdin, cmd));
      assert.equal(e.code, code);
      assert.match(e.message, msg);
    });
  }

  it("conflist-level keys and other plugins' capabilities pass", () => {
    const c = parseNetConf(
      conf({
        cniVersions: ['1.0.0', '1.1.0'],
        disableCheck: false,
        capabilities: { portMappings: true },
        runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] },
        dns: { nameservers: ['10.96.0.10'], search: ['svc.cluster.local'] },
        mtu: 1400,
      }),
      'ADD',
    );
    assert.equal(c.mtu, 1400);
    assert.deepEqual(c.dns?.nameservers, ['10.96.0.10']);
  });

  it('GC accepts the valid-attachments key and the legacy cni.dev/attachments', () => {
    const list = [{ containerID: 'c1', ifname: 'eth0' }];
    assert.deepEqual(
      parseNetConf(conf({ 'cni.dev/valid-attachments': list }), 'GC').validAttachments,
      list,
    );
    assert.deepEqual(
      parseNetConf(conf({ 'cni.dev/attachments': list }), 'GC').validAttachments,
      list,
    );
  });

  it('VERSION accepts an empty stdin and echoes the config version', () => {
    assert.equal(parseNetConf('', 'VERSION').cniVersion, '1.1.0');
    assert.equal(parseNetConf(conf({ cniVersion: '1.0.0' }), 'VERSION').cniVersion, '1.0.0');
    const v = versionResult('1.0.0');
    assert.ok(v.supportedVersions.includes('1.0.0') && v.supportedVersions.includes('1.1.0'));
  });

  it('commands newer than the config version are code 1', () => {
    assert.equal(err(() => checkCommandVersion('CHECK', '0.3.1')).code, 1);
    assert.equal(err(() => checkCommandVersion('GC', '1.0.0')).code, 1);
    assert.equal(err(() => checkCommandVersion('STATUS', '1.0.0')).code, 1);
    checkCommandVersion('CHECK', '0.4.0');
    checkCommandVersion('GC', '1.1.0');
    checkCommandVersion('ADD', '0.3.0');
  });
});
