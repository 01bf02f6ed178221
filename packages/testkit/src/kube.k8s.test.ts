import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { KubectlError, startKubeApiserver, type KubeApiserver } from './kube.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `needle` (the run's directory is in every flag file). */
function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) found.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return found;
}

function canConnect(url: string): Promise<boolean> {
  const { port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect(Number(port), '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

describe('kube-apiserver harness', () => {
  let kube: KubeApiserver;

  before(async () => {
    const started = Date.now();
    kube = await startKubeApiserver();
    console.log(
      `kube-apiserver ${kube.version} ready at ${kube.url} in ${Date.now() - started} ms`,
    );
  });

  after(async () => {
    await kube?.close();
  });

  it('serves the pinned release on loopback', async () => {
    assert.match(kube.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const { stdout } = await kube.kubectl(['version', '-o', 'json']);
    const version = JSON.parse(stdout) as { serverVersion: { gitVersion: string } };
    assert.equal(version.serverVersion.gitVersion, kube.version);
  });

  it('creates a namespace and a ConfigMap with kubectl and reads them back', async () => {
    await kube.kubectl(['create', 'namespace', 'harness']);
    await kube.kubectl(['apply', '-f', '-'], {
      input: [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: settings',
        '  namespace: harness',
        'data:',
        '  mode: strict',
        '',
      ].join('\n'),
    });
    const { stdout } = await kube.kubectl([
      'get',
      'configmap',
      'settings',
      '-n',
      'harness',
      '-o',
      'json',
    ]);
    const cm = JSON.parse(stdout) as { data: Record<string, string>; metadata: { uid: string } };
    assert.deepEqual(cm.data, { mode: 'strict' });
    assert.ok(cm.metadata.uid);
    const ns = await kube.kubectl([
      'get',
      'namespace',
      'harness',
      '-o',
      'jsonpath={.status.phase}',
    ]);
    assert.equal(ns.stdout, 'Active');
  });

  it('forbids an unprivileged user until RBAC allows it', async () => {
    const config = await kube.makeUserKubeconfig('alice', ['ciliate:testers']);
    await assert.rejects(
      kube.kubectl(['get', 'configmaps', '-n', 'harness'], { kubeconfig: config }),
      (err: unknown) => {
        assert.ok(err instanceof KubectlError);
        assert.equal(err.code, 'KUBECTL_FAILED');
        assert.match(err.stderr, /forbidden/i);
        assert.match(err.stderr, /"alice"/);
        return true;
      },
    );
    const whoami = await kube.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: config });
    const review = JSON.parse(whoami.stdout) as {
      status: { userInfo: { username: string; groups: string[] } };
    };
    assert.equal(review.status.userInfo.username, 'alice');
    assert.ok(review.status.userInfo.groups.includes('ciliate:testers'));

    await kube.kubectl([
      'create',
      'role',
      'cm-reader',
      '-n',
      'harness',
      '--verb=get,list',
      '--resource=configmaps',
    ]);
    await kube.kubectl([
      'create',
      'rolebinding',
      'cm-reader',
      '-n',
      'harness',
      '--role=cm-reader',
      '--group=ciliate:testers',
    ]);
    const { stdout } = await kube.kubectl(
      ['get', 'configmap', 'settings', '-n', 'harness', '-o', 'name'],
      {
        kubeconfig: config,
      },
    );
    assert.equal(stdout.trim(), 'configmap/settings');
    // Read access only: writing is still refused.
    await assert.rejects(
      kube.kubectl(['delete', 'configmap', 'settings', '-n', 'harness'], { kubeconfig: config }),
      /forbidden/i,
    );
  });

  it('leaves no process, port or file behind after close', async () => {
    const { pids, dir, url } = kube;
    assert.equal(alive(pids.etcd), true);
    assert.equal(alive(pids.apiserver), true);
    await kube.close();
    assert.equal(alive(pids.etcd), false, 'etcd is gone');
    assert.equal(alive(pids.apiserver), false, 'kube-apiserver is gone');
    assert.deepEqual(processesMentioning(dir), []);
    assert.equal(existsSync(dir), false);
    assert.equal(await canConnect(url), false);
  });
});
