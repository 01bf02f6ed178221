import assert from 'node:assert/strict';
import { createConnection } from 'node:net';
import { createSocket } from 'node:dgram';
import { describe, it } from 'node:test';

import { cniArgs, labConfList, pluginConfig, resultIPv4 } from './cni.js';
import { startPodServer } from './podserver.js';

describe('CNI network configuration', () => {
  it('is ciliate-cni, then portmap', () => {
    assert.deepEqual(labConfList('/run/x/cni.sock'), {
      cniVersion: '1.0.0',
      name: 'ciliate',
      plugins: [
        { type: 'ciliate-cni', socketPath: '/run/x/cni.sock' },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
  });

  it('gives each plugin the list version and name, its capabilities and the previous result', () => {
    const list = labConfList('/s');
    const mappings = [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' as const }];
    const first = pluginConfig(list, list.plugins[0]!, { portMappings: mappings }, undefined);
    assert.deepEqual(first, {
      type: 'ciliate-cni',
      socketPath: '/s',
      cniVersion: '1.0.0',
      name: 'ciliate',
    });
    const prev = { cniVersion: '1.0.0', ips: [{ address: '10.1.0.5/32' }] };
    const second = pluginConfig(list, list.plugins[1]!, { portMappings: mappings }, prev);
    assert.deepEqual(second, {
      type: 'portmap',
      capabilities: { portMappings: true },
      cniVersion: '1.0.0',
      name: 'ciliate',
      runtimeConfig: { portMappings: mappings },
      prevResult: prev,
    });
    // no mappings: no runtimeConfig at all, as libcni does
    assert.equal(
      pluginConfig(list, list.plugins[1]!, { portMappings: [] }, prev).runtimeConfig,
      undefined,
    );
  });

  it('passes the pod like a kubelet in CNI_ARGS and reads the address back', () => {
    assert.equal(
      cniArgs('app', 'web-0', 'abc'),
      'IgnoreUnknown=1;K8S_POD_NAMESPACE=app;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc',
    );
    assert.equal(
      resultIPv4({ ips: [{ address: 'fd00::5/128' }, { address: '10.1.0.5/32' }] }),
      '10.1.0.5',
    );
    assert.equal(resultIPv4({}), undefined);
  });
});

function tcpExchange(port: number, send: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection(port, '127.0.0.1');
    let got = '';
    s.on('connect', () => s.write(send));
    s.on('data', (d) => {
      got += d.toString();
      if (!/^GET \S+ HTTP/.test(send) && got.length >= send.length) s.end();
    });
    s.on('end', () => resolve(got));
    s.on('close', () => resolve(got));
    s.on('error', reject);
  });
}

describe('built-in pod server', () => {
  it('answers HTTP with the pod name, echoes other TCP, echoes UDP', async () => {
    const tcpPort = 20000 + Math.floor(Math.random() * 20000);
    const udpPort = tcpPort + 1;
    const srv = startPodServer({ name: 'web-0', tcp: [tcpPort], udp: [udpPort] });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const http = await tcpExchange(
        tcpPort,
        'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      );
      assert.match(http, /^HTTP\/1\.1 200 OK\r\n/);
      assert.ok(http.endsWith('\r\n\r\nweb-0\n'));
      assert.equal(await tcpExchange(tcpPort, 'hello, echo\n'), 'hello, echo\n');
      // bytes that start like a method but are not a request line are echoed too
      assert.equal(await tcpExchange(tcpPort, 'GETTING THERE\n'), 'GETTING THERE\n');
      const udp = createSocket('udp4');
      const reply = await new Promise<string>((resolve) => {
        udp.on('message', (m) => resolve(m.toString()));
        udp.send('ping', udpPort, '127.0.0.1');
      });
      udp.close();
      assert.equal(reply, 'ping');
    } finally {
      srv.close();
    }
  });
});
