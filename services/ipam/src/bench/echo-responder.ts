// The benchmark's baseline: a bare NATS responder in its own process, answering every request
// with its payload (no validation, no state): what one request/reply costs on this machine.
import { connect } from '@nats-io/transport-node';

const [url, subject] = process.argv.slice(2);
const nc = await connect({ servers: url! });
nc.subscribe(subject!, {
  queue: 'echo',
  callback: (_err, msg) => {
    msg.respond(msg.data);
  },
});
await nc.flush();
console.log(JSON.stringify({ event: 'service.started' }));
await nc.closed();
