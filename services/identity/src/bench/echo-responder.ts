// Baseline for the NATS benchmark: a bare NATS responder in its own process, answering every
// request with its payload, on the same queue-group subscription shape the service uses.
import { connect } from '@nats-io/transport-node';

const url = process.env.CILIATE_NATS_URL ?? 'nats://127.0.0.1:4222';
const subject = process.env.ECHO_SUBJECT ?? 'bench.echo';
const nc = await connect({ servers: url });
nc.subscribe(subject, {
  queue: 'q',
  callback: (_err, msg) => {
    msg.respond(msg.data);
  },
});
await nc.flush();
console.log(JSON.stringify({ event: 'service.started' }));
process.on('SIGTERM', () => {
  void nc.drain().then(() => process.exit(0));
});
