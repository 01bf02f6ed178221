import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, it } from 'node:test';

import { startNats, startNatsCluster } from './nats.js';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

describe('nats-server harness', () => {
  it('starts a JetStream server, stops and restarts it on the same port, and removes its directory', async () => {
    const server = await startNats();
    try {
      assert.equal(await canConnect(server.port), true);
      const jsz = (await (await fetch(`${server.monitorUrl}/jsz`)).json()) as { config?: object };
      assert.ok(jsz.config, 'JetStream is enabled');
      await server.stop();
      assert.equal(await canConnect(server.port), false);
      await server.start();
      assert.equal(await canConnect(server.port), true);
    } finally {
      await server.close();
    }
    assert.equal(existsSync(server.dir), false);
    assert.equal(await canConnect(server.port), false);
  });

  it('starts a three-server cluster with a JetStream meta leader', async () => {
    const cluster = await startNatsCluster();
    try {
      assert.equal(cluster.servers.length, 3);
      const routez = (await (await fetch(`${cluster.servers[0]!.monitorUrl}/routez`)).json()) as {
        num_routes: number;
      };
      assert.ok(routez.num_routes >= 2, `routes: ${routez.num_routes}`);
    } finally {
      await cluster.close();
    }
    for (const s of cluster.servers) assert.equal(await canConnect(s.port), false);
  });
});
