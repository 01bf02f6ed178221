// Rotation without restart: credentials issued again into the same directory, nats-server told
// to reload (SIGHUP), and a connection made with natsConnectionOptions (what every service
// holds) is dropped by the server for its removed user, then comes back with the new nkey and
// certificate, read from the files at the reconnect. The old nkey is refused from then on.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { principalName, type Principal } from '@ciliate/contracts';
import { pidsWithArgument, waitFor } from '@ciliate/testkit';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import { natsConnectionOptions } from './nats.js';
import { credentialFiles, issueSecurity, nkeyPublicOf } from './security.js';
import { startSecureNats, type SecureNats } from './testing/secure-nats.js';

const IDENTITY: Principal = { role: 'identity' };

describe('credentials rotated under a live connection', () => {
  let nats: SecureNats;
  const scratch = mkdtempSync(join(tmpdir(), 'ciliate-rotation-'));
  const conns: NatsConnection[] = [];

  before(async () => {
    nats = await startSecureNats();
  });
  after(async () => {
    for (const nc of conns) await nc.close().catch(() => undefined);
    await nats.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('reconnects with the new nkey and certificate, and the old nkey is refused', async () => {
    const files = credentialFiles(nats.bundle.dir, principalName(IDENTITY));
    const oldSeed = join(scratch, 'old.seed');
    copyFileSync(files.nkeySeedFile, oldSeed);
    const oldCert = readFileSync(files.certFile, 'utf8');

    const nc = await connect(nats.options(IDENTITY));
    conns.push(nc);
    const seen: string[] = [];
    void (async () => {
      for await (const s of nc.status()) seen.push(s.type);
    })();
    await nc.flush();

    await issueSecurity(
      nats.bundle.dir,
      [...nats.bundle.principals.values()].map((p) => p.principal),
    );
    assert.notEqual(await nkeyPublicOf(files.nkeySeedFile), await nkeyPublicOf(oldSeed));
    assert.notEqual(readFileSync(files.certFile, 'utf8'), oldCert, 'a new certificate');
    const [pid] = pidsWithArgument(join(nats.server.dir, 'nats.conf'));
    assert.ok(pid !== undefined, 'the nats-server process');
    process.kill(pid, 'SIGHUP');

    await waitFor(
      'the connection to be dropped and to come back',
      () => (seen.includes('disconnect') && seen.includes('reconnect')) || undefined,
      { timeoutMs: 15_000 },
    );
    assert.equal(nc.isClosed(), false);
    // the connection is usable again: a round trip through the server
    await nc.flush();

    // the old nkey (with the new certificate) is no longer a user
    await assert.rejects(
      connect(
        natsConnectionOptions({
          servers: nats.url,
          name: 'old-nkey',
          nkeySeedFile: oldSeed,
          tlsCaFile: files.caFile,
          tlsCertFile: files.certFile,
          tlsKeyFile: files.keyFile,
        }),
      ),
      /authorization/i,
    );
  });
});
