// IpamAssignments on a real nats-server whose datapath user may read exactly one subject of
// IPAM's state, the direct get of the node-cidrs key: the document is read, followed when IPAM
// changes it, kept when it turns invalid or goes away, and nothing else of IPAM's bucket (the
// nodes' pod address documents) is readable with that right. Without it, start fails naming the
// key.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { buckets, ipamKeys, kvSubjectPrefix } from '@ciliate/contracts';
import type { Logger } from '@ciliate/runtime';
import { startNats, type NatsServer } from '@ciliate/testkit';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import { IpamAssignments } from './assignments.js';

/** The one right the datapath needs on IPAM's state. */
const NODE_CIDRS_GET = `$JS.API.DIRECT.GET.KV_${buckets.ipam()}.${kvSubjectPrefix(buckets.ipam())}${ipamKeys.nodeCidrs}`;

function recordingLog(): { log: Logger; events: string[] } {
  const events: string[] = [];
  const record = (o: { event?: string }) => {
    if (o.event) events.push(o.event);
  };
  return { log: { info: record, warn: record } as unknown as Logger, events };
}

const doc = (nodes: { node: string; ipv4?: string }[]) => JSON.stringify({ v: 1, nodes, last: {} });

describe('IpamAssignments with only the right to read the node-cidrs key', () => {
  let nats: NatsServer;
  let admin: NatsConnection;
  let node: NatsConnection;
  let stranger: NatsConnection;
  let kv: KV;

  before(async () => {
    nats = await startNats({
      extraConfig: () => `
authorization {
  users = [
    { user: admin, password: admin }
    { user: node, password: node, permissions: {
        publish: { allow: ["${NODE_CIDRS_GET}"] }
        subscribe: { allow: ["_INBOX.>"] } } }
    { user: stranger, password: stranger, permissions: {
        publish: { allow: ["$JS.API.INFO"] }
        subscribe: { allow: ["_INBOX.>"] } } }
  ]
}`,
    });
    admin = await connect({ servers: nats.url, user: 'admin', pass: 'admin' });
    node = await connect({ servers: nats.url, user: 'node', pass: 'node' });
    stranger = await connect({ servers: nats.url, user: 'stranger', pass: 'stranger' });
    kv = await new Kvm(admin).create(buckets.ipam(), { history: 1 });
    await kv.put(
      ipamKeys.nodeCidrs,
      doc([
        { node: 'a', ipv4: '10.0.1.0/24' },
        { node: 'b', ipv4: '10.0.2.0/24' },
      ]),
    );
    await kv.put(ipamKeys.podIps('b'), '{"v":1}');
  });

  after(async () => {
    await Promise.allSettled([admin?.close(), node?.close(), stranger?.close()]);
    await nats?.close();
  });

  it('reads the document, follows IPAM, and keeps the last good one', async () => {
    const { log, events } = recordingLog();
    const a = new IpamAssignments({ nc: node, log });
    await a.start(5000);
    assert.deepEqual(a.get().get('b'), ['10.0.2.0/24']);

    await kv.put(ipamKeys.nodeCidrs, doc([{ node: 'b', ipv4: '10.0.9.0/24' }]));
    await a.refresh();
    assert.deepEqual([...a.get()], [['b', ['10.0.9.0/24']]]);

    // not IPAM's format (a CIDR that is not canonical): refused, the last good one stands
    await kv.put(ipamKeys.nodeCidrs, doc([{ node: 'b', ipv4: '10.0.9.1/24' }]));
    await a.refresh();
    assert.deepEqual([...a.get()], [['b', ['10.0.9.0/24']]]);
    assert.ok(events.includes('routes.ipam_document_invalid'));
    await kv.put(ipamKeys.nodeCidrs, 'not json');
    await a.refresh();
    await kv.delete(ipamKeys.nodeCidrs);
    await a.refresh();
    assert.deepEqual([...a.get()], [['b', ['10.0.9.0/24']]]);
  });

  it('that right reads nothing else of the bucket', async () => {
    const view = await new Kvm(node).open(buckets.ipam(), { allow_direct: true });
    await assert.rejects(view.get(ipamKeys.podIps('b')));
    await assert.rejects((await new Kvm(node).open(buckets.ipam())).get(ipamKeys.nodeCidrs));
  });

  it('without it, start fails naming the key', async () => {
    const a = new IpamAssignments({ nc: stranger, log: recordingLog().log });
    await assert.rejects(a.start(1000), /cannot read IPAM's node-cidrs document from ciliate-ipam/);
  });
});
