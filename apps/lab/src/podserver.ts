// The built-in workload a lab pod runs when its manifest gives no command:
//   node podserver.js --name POD [--tcp PORT]... [--udp PORT]...
// On each TCP port a connection whose first bytes are an HTTP request line gets an HTTP answer
// with the pod's name; any other connection is echoed back. Each UDP port echoes datagrams.
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const HTTP_REQUEST = /^[A-Z]{3,7} \S+ HTTP\/1\.[01]\r?\n/;
/** How many bytes are enough to decide: the longest method, a path and the version. */
const SNIFF_BYTES = 16;

function answerHttp(sock: Socket, name: string, first: Buffer): void {
  let buf = first.toString('latin1');
  const respond = (): void => {
    // one answer per request on the connection (keep-alive clients send several)
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buf.slice(0, end);
      buf = buf.slice(end + 4);
      const line = head.split('\r\n')[0] ?? '';
      const close = /\r\nconnection:\s*close/i.test(head) || line.endsWith('HTTP/1.0');
      const body = `${name}\n`;
      sock.write(
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Pod-Name: ${name}\r\n${close ? 'Connection: close\r\n' : ''}\r\n${line.startsWith('HEAD ') ? '' : body}`,
      );
      if (close) {
        sock.end();
        return;
      }
    }
  };
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    respond();
  });
  respond();
}

export function startPodServer(opts: { name: string; tcp: number[]; udp: number[] }): {
  close(): void;
} {
  const closers: (() => void)[] = [];
  for (const port of opts.tcp) {
    const srv = createServer((sock) => {
      sock.on('error', () => sock.destroy());
      let head = Buffer.alloc(0);
      const decide = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        const text = head.toString('latin1');
        const isHttp = HTTP_REQUEST.test(text);
        const undecided = !isHttp && head.length < SNIFF_BYTES && /^[A-Z]*( \S*)?$/.test(text);
        if (undecided) return;
        sock.off('data', decide);
        if (isHttp || (/^[A-Z]{3,7} \S+ HTTP/.test(text) && !text.includes('\n'))) {
          answerHttp(sock, opts.name, head);
        } else {
          sock.write(head);
          sock.pipe(sock);
        }
      };
      sock.on('data', decide);
    });
    srv.listen(port, '0.0.0.0');
    closers.push(() => srv.close());
  }
  for (const port of opts.udp) {
    const sock = createSocket('udp4');
    sock.on('message', (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
    sock.bind(port, '0.0.0.0');
    closers.push(() => sock.close());
  }
  return { close: () => closers.forEach((c) => c()) };
}

export function podServerMain(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: {
      name: { type: 'string' },
      tcp: { type: 'string', multiple: true },
      udp: { type: 'string', multiple: true },
    },
  });
  const ports = (list: string[] | undefined): number[] => (list ?? []).map(Number);
  const tcp = ports(values.tcp);
  const udp = ports(values.udp);
  startPodServer({ name: values.name ?? 'pod', tcp, udp });
  process.stdout.write(
    `${values.name}: HTTP and TCP echo on ${tcp.join(', ') || '-'}, UDP echo on ${udp.join(', ') || '-'}\n`,
  );
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
}
