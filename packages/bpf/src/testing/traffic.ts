// A tiny traffic tool run inside network namespaces by the privileged tests
// (`ip netns exec <ns> node traffic.js <mode> ...`); one JSON line per result on stdout.
//   tcp-server <port>                  echo every byte back
//   udp-server <port>                  echo every datagram back
//   tcp-client <host> <port> <bytes>   send, read the echo, close; prints {ok, bytes, ms}
//   udp-client <host> <port> <count>   send count datagrams, await each echo from host:port
import { createSocket } from 'node:dgram';
import { createServer, connect } from 'node:net';

const [mode, ...args] = process.argv.slice(2);

function print(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function fail(message: string): never {
  print({ ok: false, error: message });
  process.exit(1);
}

switch (mode) {
  case 'tcp-server': {
    const server = createServer((s) => {
      s.on('error', () => undefined);
      s.pipe(s);
    });
    server.listen(Number(args[0]), '0.0.0.0', () => print({ listening: true }));
    break;
  }
  case 'udp-server': {
    const sock = createSocket('udp4');
    sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
    sock.bind(Number(args[0]), '0.0.0.0', () => print({ listening: true }));
    break;
  }
  case 'tcp-client': {
    const [host, port, size] = [args[0]!, Number(args[1]), Number(args[2])];
    const start = Date.now();
    const payload = Buffer.alloc(size, 0x5a);
    let got = 0;
    let localPort: number | undefined;
    const s = connect({ host, port }, () => {
      localPort = s.localPort;
      s.write(payload);
    });
    s.setTimeout(5000, () => fail('timeout'));
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= size) s.end();
    });
    s.on('error', (e) => fail(e.message));
    s.on('close', () => {
      if (got < size) fail(`short echo: ${got} of ${size}`);
      print({ ok: true, bytes: got, ms: Date.now() - start, localPort });
    });
    break;
  }
  case 'udp-client': {
    const [host, port, count] = [args[0]!, Number(args[1]), Number(args[2])];
    const sock = createSocket('udp4');
    let got = 0;
    const timer = setTimeout(() => fail(`timeout after ${got} of ${count} echoes`), 5000);
    sock.on('message', (_msg, from) => {
      // an answer from another address (a reply that missed its un-NAT) is no answer
      if (from.address !== host || from.port !== port) {
        fail(`answer from ${from.address}:${from.port}, not ${host}:${port}`);
      }
      got++;
      if (got === count) {
        clearTimeout(timer);
        const localPort = sock.address().port;
        sock.close();
        print({ ok: true, datagrams: got, localPort });
      } else {
        sock.send(Buffer.from(`ping ${got}`), port, host);
      }
    });
    sock.send(Buffer.from('ping 0'), port, host);
    break;
  }
  default:
    fail(`unknown mode ${mode}`);
}
