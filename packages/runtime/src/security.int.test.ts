import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

import { sleep, spawnNode, startNats, type NatsServer } from '@ciliate/testkit';
import { nkeys } from '@nats-io/transport-node';

import { PROBE, getStatus, startProbe } from './testing.int-helpers.js';

const run = promisify(execFile);

/** A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makeCertificates(dir: string): Promise<void> {
  const ossl = (args: string[]): Promise<unknown> => run('openssl', args, { cwd: dir });
  await ossl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=ciliate-test-ca',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  ]);
  await writeFile(
    join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n',
  );
  await writeFile(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    await ossl([
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${who}`,
      '-keyout',
      `${who}.key`,
      '-out',
      `${who}.csr`,
    ]);
    await ossl([
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      `${who}.ext`,
      '-out',
      `${who}.pem`,
    ]);
  }
}

describe('a service on a NATS with mutual TLS and nkey authentication', () => {
  let nats: NatsServer;
  let dir: string;
  const user = nkeys.createUser();
  before(async () => {
    nats = await startNats({
      extraConfig: async (d) => {
        dir = d;
        await makeCertificates(d);
        await writeFile(join(d, 'user.nk'), new TextDecoder().decode(user.getSeed()));
        return [
          `tls { cert_file: "${d}/server.pem", key_file: "${d}/server.key", ca_file: "${d}/ca.pem", verify: true }`,
          `authorization { users = [ { nkey: ${user.getPublicKey()} } ] }`,
        ].join('\n');
      },
    });
  });
  after(async () => {
    await nats.close();
  });

  it('connects with the CA, client certificate and nkey seed file and becomes ready', async () => {
    const probe = await startProbe({
      CILIATE_NATS_URL: `tls://127.0.0.1:${nats.port}`,
      CILIATE_NATS_TLS_CA: join(dir, 'ca.pem'),
      CILIATE_NATS_TLS_CERT: join(dir, 'client.pem'),
      CILIATE_NATS_TLS_KEY: join(dir, 'client.key'),
      CILIATE_NATS_NKEY: join(dir, 'user.nk'),
    });
    try {
      assert.equal((await getStatus(`http://${probe.httpAddress}/readyz`)).status, 200);
    } finally {
      await probe.proc.kill('SIGKILL');
    }
  });

  it('does not get in without the nkey', async () => {
    const proc = spawnNode(PROBE, [], {
      env: {
        CILIATE_NATS_URL: `tls://127.0.0.1:${nats.port}`,
        CILIATE_NATS_TLS_CA: join(dir, 'ca.pem'),
        CILIATE_NATS_TLS_CERT: join(dir, 'client.pem'),
        CILIATE_NATS_TLS_KEY: join(dir, 'client.key'),
        CILIATE_HTTP_ADDRESS: '127.0.0.1:0',
      },
    });
    try {
      await sleep(3000);
      assert.ok(
        !proc.output().includes('"event":"started"'),
        'an unauthenticated service must not start',
      );
    } finally {
      await proc.kill('SIGKILL');
    }
  });
});
