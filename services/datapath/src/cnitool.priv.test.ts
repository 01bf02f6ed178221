// The plugin driven by libcni itself, through the reference `cnitool` (ADD, CHECK, STATUS, DEL
// of a conflist from a config directory, the result cached by libcni between calls), as
// containerd and CRI-O drive it. cnitool is not packaged by Debian: the test command builds the
// release in tools/cnitool.version from the Go module proxy and sets $CNITOOL (scripts/lib.sh,
// ensure_cnitool); elsewhere put it on PATH or in $CNITOOL. Without it this test is skipped,
// saying so, and counted as skipped.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { atExit, NetScope, type Netns } from '@ciliate/testkit';

import { PLUGIN, REFERENCE_PLUGINS, makeNode, ping, startAgent } from './testing/harness.js';
import type { RunningAgent, TestNode } from './testing/harness.js';

function findCnitool(): string | undefined {
  if (process.env.CNITOOL) return process.env.CNITOOL;
  const r = spawnSync('sh', ['-c', 'command -v cnitool'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const CNITOOL = findCnitool();
const NET = `ciliate-cnitool-${process.pid}`;
const LIBCNI_RESULTS = '/var/lib/cni/results';

describe(
  'libcni (cnitool) drives ciliate-cni',
  { skip: CNITOOL ? false : 'cnitool not found (see the comment on top)' },
  () => {
    const scope = new NetScope();
    let node: TestNode;
    let agent: RunningAgent;
    let pod: Netns;
    const confDir = mkdtempSync(join(tmpdir(), 'ciliate-cnitool-'));
    const cleanUp = () => {
      rmSync(confDir, { recursive: true, force: true });
      // what libcni caches for our network, if a DEL did not get to remove it
      try {
        for (const f of readdirSync(LIBCNI_RESULTS))
          if (f.startsWith(`${NET}-`)) rmSync(join(LIBCNI_RESULTS, f), { force: true });
      } catch {
        // no cache directory: nothing cached
      }
    };
    const forget = atExit(cleanUp);

    const cnitool = (cmd: string) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
        const child = spawn(
          'ip',
          ['netns', 'exec', node.ns.name, CNITOOL!, cmd, NET, `/var/run/netns/${pod.name}`],
          {
            env: {
              PATH: process.env.PATH,
              NETCONFPATH: confDir,
              // the plugin found as a runtime finds it: by its type in CNI_PATH (a symlink to it)
              CNI_PATH: `${dirname(PLUGIN)}:${REFERENCE_PLUGINS}`,
              CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=cnitool-pod',
            },
          },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });

    before(async () => {
      node = await makeNode(scope, '10.236.0.0/24', '192.168.236.1');
      agent = await startAgent(node);
      pod = await scope.netns('pod');
      writeFileSync(
        join(confDir, '10-ciliate.conflist'),
        JSON.stringify({
          cniVersion: '1.1.0',
          name: NET,
          plugins: [{ type: 'ciliate-cni', socketPath: node.socketPath }],
        }),
      );
    });

    after(async () => {
      await agent?.stop();
      await scope.close();
      node?.remove();
      cleanUp();
      forget();
    });

    it('ADD gives the pod an address that answers; CHECK and STATUS pass; DEL removes it', async () => {
      const add = await cnitool('add');
      assert.equal(add.code, 0, add.stdout + add.stderr);
      const result = JSON.parse(add.stdout) as { cniVersion: string; ips: { address: string }[] };
      assert.equal(result.cniVersion, '1.1.0');
      const ip = result.ips[0]!.address.split('/')[0]!;
      assert.ok(await ping(node.ns.name, ip), `the pod at ${ip} answers from the node`);

      const check = await cnitool('check');
      assert.equal(check.code, 0, check.stdout + check.stderr);
      const status = await cnitool('status');
      assert.equal(status.code, 0, status.stdout + status.stderr);

      const del = await cnitool('del');
      assert.equal(del.code, 0, del.stdout + del.stderr);
      assert.ok(!(await ping(node.ns.name, ip, 1)), 'gone after DEL');
      // libcni removed its cached result: CHECK now has nothing to check against
      const after = await cnitool('check');
      assert.notEqual(after.code, 0);
    });

    it('STATUS through libcni fails with the message of the plugin while the agent is down (libcni shows msg, not code)', async () => {
      await agent.stop();
      const status = await cnitool('status');
      assert.notEqual(status.code, 0);
      assert.match(status.stdout + status.stderr, /node agent unreachable/);
      agent = await startAgent(node);
    });
  },
);
