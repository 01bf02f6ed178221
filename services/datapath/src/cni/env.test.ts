// The CNI environment, as tables from the spec: required variables per command, validation of
// container ID, ifname and CNI_ARGS, each error naming the variable.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import fc from 'fast-check';

import { parseCniArgs, parseCniEnv, validContainerId, validIfname } from './env.js';
import { CniError } from './errors.js';

const FULL = {
  CNI_COMMAND: 'ADD',
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/pod1',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
};

function codeOf(fn: () => unknown): { code: number; msg: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof CniError, `a CniError, got ${String(err)}`);
    return { code: err.code, msg: err.message };
  }
  assert.fail('expected an error');
}

describe('CNI environment', () => {
  it('ADD with everything set parses', () => {
    const env = parseCniEnv(FULL);
    assert.equal(env.command, 'ADD');
    assert.equal(env.containerId, 'abc123');
    assert.equal(env.netns, '/var/run/netns/pod1');
    assert.equal(env.ifname, 'eth0');
    assert.deepEqual(env.path, ['/opt/cni/bin', '/usr/lib/cni']);
  });

  const missing: [string, Record<string, string | undefined>, string[]][] = [
    ['no CNI_COMMAND', { ...FULL, CNI_COMMAND: undefined }, ['CNI_COMMAND']],
    ['ADD without CNI_CONTAINERID', { ...FULL, CNI_CONTAINERID: undefined }, ['CNI_CONTAINERID']],
    ['ADD without CNI_NETNS', { ...FULL, CNI_NETNS: '' }, ['CNI_NETNS']],
    ['ADD without CNI_IFNAME', { ...FULL, CNI_IFNAME: undefined }, ['CNI_IFNAME']],
    ['ADD without CNI_PATH', { ...FULL, CNI_PATH: undefined }, ['CNI_PATH']],
    [
      'CHECK without container ID and netns',
      { ...FULL, CNI_COMMAND: 'CHECK', CNI_CONTAINERID: undefined, CNI_NETNS: undefined },
      ['CNI_CONTAINERID', 'CNI_NETNS'],
    ],
    [
      'DEL without CNI_IFNAME',
      { ...FULL, CNI_COMMAND: 'DEL', CNI_IFNAME: undefined },
      ['CNI_IFNAME'],
    ],
    ['GC without CNI_PATH', { CNI_COMMAND: 'GC' }, ['CNI_PATH']],
    ['STATUS without CNI_PATH', { CNI_COMMAND: 'STATUS' }, ['CNI_PATH']],
  ];
  for (const [name, env, vars] of missing) {
    it(`${name}: code 4 naming ${vars.join(', ')}`, () => {
      const e = codeOf(() => parseCniEnv(env));
      assert.equal(e.code, 4);
      for (const v of vars) assert.match(e.msg, new RegExp(v));
    });
  }

  it('DEL needs no netns; VERSION needs nothing but the command', () => {
    const del = parseCniEnv({ ...FULL, CNI_COMMAND: 'DEL', CNI_NETNS: undefined });
    assert.equal(del.netns, undefined);
    assert.equal(parseCniEnv({ CNI_COMMAND: 'VERSION' }).command, 'VERSION');
  });

  it('an unknown command is code 4 naming CNI_COMMAND', () => {
    const e = codeOf(() => parseCniEnv({ ...FULL, CNI_COMMAND: 'FROB' }));
    assert.equal(e.code, 4);
    assert.match(e.msg, /^CNI_COMMAND: Invalid value: "FROB"/);
  });

  const badValues: [string, Record<string, string>, string][] = [
    ['ifname of 16 characters', { CNI_IFNAME: 'a'.repeat(16) }, 'CNI_IFNAME'],
    ['ifname "."', { CNI_IFNAME: '.' }, 'CNI_IFNAME'],
    ['ifname ".."', { CNI_IFNAME: '..' }, 'CNI_IFNAME'],
    ['ifname with "/"', { CNI_IFNAME: 'eth/0' }, 'CNI_IFNAME'],
    ['ifname with ":"', { CNI_IFNAME: 'eth:0' }, 'CNI_IFNAME'],
    ['ifname with a space', { CNI_IFNAME: 'eth 0' }, 'CNI_IFNAME'],
    ['container ID starting with "-"', { CNI_CONTAINERID: '-abc' }, 'CNI_CONTAINERID'],
    ['container ID with "/"', { CNI_CONTAINERID: 'a/b' }, 'CNI_CONTAINERID'],
    ['relative netns path', { CNI_NETNS: 'pod1' }, 'CNI_NETNS'],
    ['CNI_ARGS pair without "="', { CNI_ARGS: 'K8S_POD_NAME' }, 'CNI_ARGS'],
  ];
  for (const [name, patch, variable] of badValues) {
    it(`${name}: code 4 naming ${variable}`, () => {
      const e = codeOf(() => parseCniEnv({ ...FULL, ...patch }));
      assert.equal(e.code, 4);
      assert.ok(e.msg.startsWith(`${variable}: Invalid value`), e.msg);
    });
  }

  it('ifnames of 15 characters and container IDs with "_.-" are fine', () => {
    assert.equal(validIfname('a'.repeat(15)), undefined);
    assert.equal(validContainerId('a_b.c-d'), undefined);
  });

  it('CNI_ARGS: Kubernetes keys parsed; unknown keys need IgnoreUnknown (else code 2)', () => {
    const a = parseCniArgs(
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u1;FOO=bar',
    );
    assert.equal(a.podNamespace, 'ns1');
    assert.equal(a.podName, 'web-0');
    assert.equal(a.podUid, 'u1');
    assert.equal(a.infraContainerId, 'abc');
    assert.equal(a.raw.FOO, 'bar');
    const e = codeOf(() => parseCniArgs('K8S_POD_NAME=x;FOO=bar'));
    assert.equal(e.code, 2);
    assert.match(e.msg, /FOO/);
    assert.match(e.msg, /bar/);
  });

  it('property: every ifname accepted fits a kernel link name', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), (s) => {
        if (validIfname(s) === undefined) {
          assert.ok(
            s.length >= 1 && s.length <= 15 && !/[/:\s]/.test(s) && s !== '.' && s !== '..',
          );
        }
      }),
    );
  });
});
