import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  NODE_ROLES,
  ROLES,
  allows,
  inboxPrefix,
  permissionTableMarkdown,
  permissionsOf,
  principalName,
  principalProblem,
  subjectMatches,
  type Principal,
} from './access.js';
import { buckets, kvSubjectPrefix, resourceKey } from './buckets.js';
import {
  DATAPATH_COMPONENT,
  DATAPATH_EVENT_TYPES,
  datapathEndpoints,
  datapathSubjects,
} from './datapath.js';
import {
  IDENTITY_CLUSTER_ENDPOINTS,
  IDENTITY_COMPONENT,
  IDENTITY_ENDPOINTS,
  IDENTITY_NODE_ENDPOINTS,
  identityNodeSubject,
} from './identity.js';
import {
  IPAM_CLUSTER_ENDPOINTS,
  IPAM_COMPONENT,
  IPAM_NODE_ENDPOINTS,
  ipamEndpoints,
  ipamNodeSubject,
  ipamSubject,
} from './ipam.js';
import { subjects } from './subjects.js';

/** Every principal the table knows, with two nodes for the node-scoped roles. */
const everyone: Principal[] = ROLES.flatMap((role) =>
  NODE_ROLES.has(role)
    ? [
        { role, node: 'node-a' },
        { role, node: 'n2.example' },
      ]
    : [{ role }],
);
const nonAdmin = everyone.filter((p) => p.role !== 'admin');

function who(op: 'publish' | 'subscribe', subject: string): string[] {
  return nonAdmin.filter((p) => allows(permissionsOf(p), op, subject)).map(principalName);
}

describe('the NATS permission table', () => {
  it('matches subjects as nats-server does', () => {
    assert.ok(subjectMatches('a.*.c', 'a.b.c'));
    assert.ok(!subjectMatches('a.*.c', 'a.b.c.d'));
    assert.ok(subjectMatches('a.>', 'a.b.c'));
    assert.ok(!subjectMatches('a.>', 'a'));
    assert.ok(!subjectMatches('a.b', 'a.c'));
  });

  it('every endpoint of every component is classified, served by one role and called by another', () => {
    // A new endpoint that is in neither list fails here: it has no rule yet.
    assert.deepEqual(
      [...IPAM_CLUSTER_ENDPOINTS, ...IPAM_NODE_ENDPOINTS].sort(),
      Object.values(ipamEndpoints).sort(),
    );
    assert.deepEqual(
      [...new Set([...IDENTITY_CLUSTER_ENDPOINTS, ...IDENTITY_NODE_ENDPOINTS])].sort(),
      [...IDENTITY_ENDPOINTS].sort(),
    );
    const cases: { subject: string; server: string }[] = [
      ...IPAM_CLUSTER_ENDPOINTS.map((e) => ({ subject: ipamSubject(e), server: 'ciliate-ipam' })),
      ...IPAM_NODE_ENDPOINTS.map((e) => ({
        subject: ipamNodeSubject(e, 'node-a'),
        server: 'ciliate-ipam',
      })),
      ...IDENTITY_CLUSTER_ENDPOINTS.map((e) => ({
        subject: subjects.endpoint(IDENTITY_COMPONENT, e),
        server: 'ciliate-identity',
      })),
      ...IDENTITY_NODE_ENDPOINTS.map((e) => ({
        subject: identityNodeSubject(e, 'node-a'),
        server: 'ciliate-identity',
      })),
      ...Object.values(datapathEndpoints).map((e) => ({
        subject: datapathSubjects.endpoint('node-a', e),
        server: 'ciliate-datapath-node-a',
      })),
    ];
    for (const { subject, server } of cases) {
      assert.deepEqual(who('subscribe', subject), [server], `who serves ${subject}`);
      assert.ok(
        who('publish', subject).some((p) => p !== server),
        `${subject} has no caller in the table`,
      );
    }
  });

  it('every bucket has exactly one owning role besides the admin, and every event a reader', () => {
    for (const bucket of Object.values(buckets).map((b) => b())) {
      const owners = who('publish', `$JS.API.STREAM.CREATE.KV_${bucket}`);
      assert.ok(owners.length >= 1, `${bucket} has no owner`);
    }
    for (const t of DATAPATH_EVENT_TYPES) {
      const subject = datapathSubjects.event(t, 'node-a');
      assert.deepEqual(who('publish', subject), ['ciliate-datapath-node-a']);
      assert.ok(who('subscribe', subject).includes('ciliate-viewer'));
      assert.ok(who('subscribe', subject).includes('ciliate-flow-relay'));
    }
  });

  it("a node's datapath acts only for its own node", () => {
    const a = permissionsOf({ role: 'datapath', node: 'node-a' });
    assert.ok(allows(a, 'publish', ipamNodeSubject('allocate', 'node-a')));
    assert.ok(!allows(a, 'publish', ipamNodeSubject('allocate', 'n2.example')));
    assert.ok(!allows(a, 'publish', identityNodeSubject('ipcache-upsert', 'n2.example')));
    assert.ok(!allows(a, 'publish', subjects.endpoint(IDENTITY_COMPONENT, 'ipcache-upsert')));
    assert.ok(!allows(a, 'publish', datapathSubjects.event('drop', 'n2.example')));
    assert.ok(!allows(a, 'subscribe', datapathSubjects.endpoint('n2.example', 'endpoint-list')));
    // Its own CiliumNode, never another's; CiliumEndpoints, never Pods or policies.
    const key = (kind: string, ns: string, name: string) =>
      `${kvSubjectPrefix(buckets.resources())}${resourceKey({ kind, namespace: ns, name })}`;
    assert.ok(allows(a, 'publish', key('CiliumNode', '', 'node-a')));
    assert.ok(!allows(a, 'publish', key('CiliumNode', '', 'n2.example')));
    assert.ok(allows(a, 'publish', key('CiliumEndpoint', 'default', 'web')));
    assert.ok(!allows(a, 'publish', key('Pod', 'default', 'web')));
    assert.ok(!allows(a, 'publish', key('CiliumNetworkPolicy', 'default', 'allow-all')));
    // No IPAM or identity state, no stream management.
    assert.ok(!allows(a, 'publish', `$JS.API.STREAM.INFO.KV_${buckets.ipam()}`));
    // Of IPAM's bucket, only the node CIDR assignments (to check peers' routes), by direct get.
    const direct = `$JS.API.DIRECT.GET.KV_${buckets.ipam()}.${kvSubjectPrefix(buckets.ipam())}`;
    assert.ok(allows(a, 'publish', `${direct}node-cidrs`));
    assert.ok(!allows(a, 'publish', `${direct}pods.n2.example`));
    assert.ok(!allows(a, 'publish', `$JS.API.DIRECT.GET.KV_${buckets.ipam()}`));
    assert.ok(!allows(a, 'publish', `$JS.API.STREAM.MSG.GET.KV_${buckets.ipam()}`));
    assert.ok(!allows(a, 'publish', `$JS.API.CONSUMER.CREATE.KV_${buckets.ipam()}`));
    assert.ok(!allows(a, 'publish', `$JS.API.CONSUMER.CREATE.KV_${buckets.ipam()}.w_1.$KV.x.lb`));
    assert.ok(!allows(a, 'publish', `$JS.API.STREAM.INFO.KV_${buckets.identities()}`));
    assert.ok(!allows(a, 'publish', `$JS.API.STREAM.DELETE.KV_${buckets.ipcache()}`));
    assert.ok(!allows(a, 'publish', `${kvSubjectPrefix(buckets.ipcache())}v4.10-0-0-1.32`));
  });

  it('only the kube-bridge and the admin write every kind; services write the kinds they own', () => {
    const anyPolicy = `${kvSubjectPrefix(buckets.resources())}CiliumNetworkPolicy.default.x`;
    assert.deepEqual(who('publish', anyPolicy), ['ciliate-kube-bridge']);
    assert.deepEqual(
      who('publish', `${kvSubjectPrefix(buckets.resources())}CiliumIdentity._.300`),
      ['ciliate-identity', 'ciliate-kube-bridge'],
    );
    // LB-IPAM writes a pool's status (its conditions), never the pool itself.
    const pool = resourceKey({ kind: 'CiliumLoadBalancerIPPool', namespace: '', name: 'lb' });
    assert.deepEqual(who('publish', `${kvSubjectPrefix(buckets.resourceStatus())}${pool}`), [
      'ciliate-ipam',
      'ciliate-kube-bridge',
    ]);
    assert.deepEqual(who('publish', `${kvSubjectPrefix(buckets.resources())}${pool}`), [
      'ciliate-kube-bridge',
    ]);
  });

  it('a viewer reads state and taps events but changes nothing', () => {
    const v = permissionsOf({ role: 'viewer' });
    assert.equal(v.allowResponses, false);
    for (const pattern of v.publish) {
      assert.ok(!pattern.startsWith('$KV.'), `viewer may write ${pattern}`);
      assert.ok(!/STREAM\.(CREATE|UPDATE|DELETE|PURGE)/.test(pattern), pattern);
      assert.ok(
        !/\.(allocate|release|heartbeat|ipcache-upsert|ipcache-delete|node-cidrs)$/.test(pattern),
        pattern,
      );
    }
    assert.ok(allows(v, 'publish', datapathSubjects.endpoint('n2.example', 'ct-list')));
    assert.ok(allows(v, 'subscribe', datapathSubjects.events({ type: 'drop' })));
  });

  it('each principal has its own inbox, which nobody else may read', () => {
    for (const p of everyone) {
      const mine = `${inboxPrefix(p)}.abc`;
      assert.ok(allows(permissionsOf(p), 'subscribe', mine));
      const others = nonAdmin.filter(
        (q) => principalName(q) !== principalName(p) && allows(permissionsOf(q), 'subscribe', mine),
      );
      assert.deepEqual(others.map(principalName), []);
    }
  });

  it('refuses an invalid principal, naming the field', () => {
    assert.match(principalProblem({ role: 'datapath' })!, /^node: /);
    assert.match(principalProblem({ role: 'ipam', node: 'x' })!, /^node: /);
    assert.match(principalProblem({ role: 'datapath', node: 'Bad_Name' })!, /^node: /);
    assert.match(principalProblem({ role: 'root' as never })!, /^role: /);
    assert.throws(() => permissionsOf({ role: 'kubelet' }), /node/);
    assert.equal(DATAPATH_COMPONENT, 'datapath');
    assert.equal(IPAM_COMPONENT, 'ipam');
  });
});

describe('docs/permissions.md', () => {
  it('is the table the code derives (npm run gen:permissions rewrites it)', async () => {
    const { readFile } = await import('node:fs/promises');
    const file = new URL('../../../docs/permissions.md', import.meta.url);
    assert.equal(await readFile(file, 'utf8'), permissionTableMarkdown());
  });
});
