// Where CNI_NETNS may lead: the pure place check with every spelling a caller could try, and
// the agent's whole check (symlinks and ".." resolved, a namespace file, never the node's own)
// over temp directories and this process's own /proc entries.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { CniError } from './errors.js';
import {
  DEFAULT_NETNS_DIRS,
  checkNetns,
  netnsDirProblem,
  netnsPlaceProblem,
  resolveNetnsPath,
} from './netns.js';

const DIRS = ['/var/run/netns', '/run/netns'];

describe('netnsPlaceProblem', () => {
  const allowed = [
    '/var/run/netns/cni-2f0c0f7e-9d1b-4c3e-8a0b-1f0a3c9e2b11', // containerd
    '/run/netns/netns-5d2e8a4c-1b3f-4e6a-9c7d-2a1b3c4d5e6f', // podman
    '/var/run/netns/6b0e8d1c-2f4a-4b5c-9d8e-7f6a5b4c3d2e', // CRI-O
    '/var/run/netns/lab-node-a-pod-1', // ip netns, the lab
    '/proc/1234/ns/net',
    '/proc/1234/task/1240/ns/net',
  ];
  for (const p of allowed) {
    it(`accepts ${p}`, () => assert.equal(netnsPlaceProblem(p, DIRS), undefined));
  }

  const refused: [string, string, RegExp][] = [
    ['an empty path', '', /must not be empty/],
    ['a relative path', 'var/run/netns/x', /absolute path/],
    [
      'a file elsewhere',
      '/etc/passwd',
      /must be a namespace in \/var\/run\/netns, \/run\/netns, \/proc\/<pid>\/ns\/net/,
    ],
    ['the directory itself', '/var/run/netns', /must be a namespace in/],
    ['a nested entry', '/var/run/netns/a/b', /must be a namespace in/],
    ['a prefix look-alike', '/var/run/netnsX/a', /must be a namespace in/],
    ['a sibling directory', '/var/run/netns2/a', /must be a namespace in/],
    ['".." left in', '/var/run/netns/../../etc/shadow', /normalised/],
    ['"." left in', '/var/run/netns/./x', /normalised/],
    ['a double slash', '/var/run/netns//x', /normalised/],
    ['a trailing slash', '/var/run/netns/x/', /normalised/],
    ['a NUL byte', '/var/run/netns/x\0/etc', /NUL/],
    ['an overlong path', `/var/run/netns/${'x'.repeat(5000)}`, /at most 4095 bytes/],
    ['another namespace kind', '/proc/1234/ns/mnt', /must be a namespace in/],
    ['the user namespace', '/proc/1234/ns/user', /must be a namespace in/],
    ['/proc/self unresolved', '/proc/self/ns/net', /must be a namespace in/],
    ['a pid with a leading zero', '/proc/0123/ns/net', /must be a namespace in/],
    ['a pid of 0', '/proc/0/ns/net', /must be a namespace in/],
    ['not a pid', '/proc/abc/ns/net', /must be a namespace in/],
    ['a file beside the link', '/proc/1234/ns/net/x', /must be a namespace in/],
    ['the pid directory', '/proc/1234', /must be a namespace in/],
    ['the root file system of a pid', '/proc/1234/root/etc/passwd', /must be a namespace in/],
    ['the node root', '/', /normalised|must be a namespace in/],
  ];
  for (const [what, p, msg] of refused) {
    it(`refuses ${what}`, () => assert.match(netnsPlaceProblem(p, DIRS) ?? 'accepted', msg));
  }

  it('accepts configured directories, and only those', () => {
    assert.equal(
      netnsPlaceProblem('/var/run/docker/netns/abc', ['/var/run/docker/netns']),
      undefined,
    );
    assert.match(
      netnsPlaceProblem('/var/run/netns/abc', ['/var/run/docker/netns']) ?? '',
      /docker/,
    );
  });
});

describe('netnsDirProblem', () => {
  it('takes absolute, normalised directories other than / and /proc', () => {
    for (const d of DEFAULT_NETNS_DIRS) assert.equal(netnsDirProblem(d), undefined);
    assert.equal(netnsDirProblem('/var/run/docker/netns'), undefined);
    assert.match(netnsDirProblem('run/netns') ?? '', /absolute/);
    assert.match(netnsDirProblem('/') ?? '', /must not be "\/"/);
    assert.match(netnsDirProblem('/proc') ?? '', /under \/proc/);
    assert.match(netnsDirProblem('/proc/1/ns') ?? '', /under \/proc/);
    assert.match(netnsDirProblem('/run/netns/') ?? '', /normalised/);
    assert.match(netnsDirProblem('/run/../etc') ?? '', /normalised/);
  });
});

describe('checkNetns (file system)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ciliate-netns-'));
  const pods = join(dir, 'netns');
  mkdirSync(pods);
  writeFileSync(join(pods, 'plain-file'), '');
  writeFileSync(join(dir, 'outside'), '');
  symlinkSync(join(dir, 'outside'), join(pods, 'link-out'));
  symlinkSync(join(pods, 'plain-file'), join(dir, 'link-in'));
  symlinkSync('/proc/self/ns/net', join(pods, 'link-to-self'));
  symlinkSync(join(pods, 'nowhere'), join(pods, 'dangling'));
  symlinkSync(join(dir, 'nowhere'), join(pods, 'dangling-out'));
  const policy = { dirs: [pods], forbidden: ['/proc/self/ns/net'] };
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refusedWith = async (p: string, cmd: 'ADD' | 'CHECK' | 'DEL', msg: RegExp) => {
    await assert.rejects(checkNetns(p, cmd, policy), (e: unknown) => {
      assert.ok(e instanceof CniError);
      assert.equal(e.code, 4);
      assert.match(e.message, /^CNI_NETNS: Invalid value: /);
      assert.match(e.message, msg);
      return true;
    });
  };

  it('resolves symlinks and "..": the place is where the path leads', async () => {
    assert.deepEqual(await resolveNetnsPath(`${pods}/../outside`), {
      path: join(dir, 'outside'),
      exists: true,
    });
    await refusedWith(`${pods}/../outside`, 'ADD', /it leads to .*outside/);
    await refusedWith(join(pods, 'link-out'), 'ADD', /it leads to .*outside/);
    await refusedWith(join(pods, 'link-out'), 'DEL', /it leads to .*outside/);
    await refusedWith(
      join(pods, 'plain-file', '..', '..', 'outside'),
      'ADD',
      /must be a namespace/,
    );
  });

  it('a file in an allowed place is still no namespace', async () => {
    await refusedWith(join(pods, 'plain-file'), 'ADD', /is not a network namespace/);
    await refusedWith(join(dir, 'link-in'), 'CHECK', /is not a network namespace/);
  });

  it("never the agent's own namespace, however it is named", async () => {
    const own = { dirs: [pods], forbidden: ['/proc/self/ns/net'] };
    for (const p of [
      '/proc/self/ns/net',
      `/proc/${process.pid}/ns/net`,
      '/proc/thread-self/ns/net',
      '/proc/self/ns/../ns/net',
      join(pods, 'link-to-self'),
    ]) {
      await assert.rejects(checkNetns(p, 'ADD', own), /node's own network namespace/, p);
    }
    await refusedWith('/proc/self/ns/mnt', 'ADD', /must be a namespace/);
    await refusedWith('/proc/self/root/etc/passwd', 'ADD', /leads to \/etc\/passwd/);
  });

  it('ADD and CHECK need a namespace there; DEL may name one that is gone', async () => {
    await refusedWith(join(pods, 'gone'), 'ADD', /no such namespace/);
    await refusedWith(join(pods, 'dangling'), 'CHECK', /no such namespace/);
    await checkNetns(join(pods, 'gone'), 'DEL', policy);
    await checkNetns(join(pods, 'plain-file'), 'DEL', policy);
    await refusedWith(join(dir, 'gone'), 'DEL', /must be a namespace in/);
    await refusedWith(join(pods, 'dangling-out'), 'DEL', /leads to .*nowhere/);
  });

  it('refuses what is not a path before touching the file system', async () => {
    await refusedWith('netns/x', 'ADD', /absolute path/);
    await refusedWith(`${pods}/x\0y`, 'ADD', /NUL/);
    await refusedWith(`/${'a'.repeat(5000)}`, 'DEL', /at most 4095 bytes/);
  });
});
