// The packet test harness: the datapath's objects loaded with a config of the test's choosing
// over a fresh, private set of pinned maps; maps seeded through their typed views; a program
// run on a crafted frame with BPF_PROG_TEST_RUN; and what it did read back: the verdict, the
// frame as the program left it, the skb context (mark), and the trace and drop events the run
// put on the ring buffer. Close removes the pins.
//
// What a test run cannot show: where a redirect goes (bpf_redirect only records the ifindex for
// the caller that runs after the program), and the tunnel metadata a program sets or reads (a
// test run's skb has none; VXLAN identity is tested end to end in crossnode.priv.test.ts).
// The run happens in the test process's network namespace: with no ifindex in the context the
// packet is on loopback (ifindex 1), so endpoints meant to be "behind this interface" use 1.
import type { BpfProgram, SkbContextIn, SkbContextOut } from '../object.js';
import { Datapath, type DatapathObjectName, type DatapathOptions } from '../datapath/datapath.js';
import { Programs } from '../datapath/constants.js';
import type { DatapathEvent, DropEvent, TraceEvent } from '../datapath/events.js';
import type { RingBufferReader } from '../ringbuf.js';
import { parseFrame, type ParsedFrame } from './packets.js';
import { pinDir } from './support.js';

/** tc verdicts (linux/pkt_cls.h). */
export const TcAction = { OK: 0, SHOT: 2, REDIRECT: 7 } as const;
/** XDP verdicts (linux/bpf.h). */
export const XdpAction = { ABORTED: 0, DROP: 1, PASS: 2, TX: 3, REDIRECT: 4 } as const;

/** The interface a test run's packet is on when the context names none: loopback. */
export const TEST_RUN_IFINDEX = 1;

/** The datapath's programs by object, as `run()` names them. */
export type ProgramName = {
  [O in DatapathObjectName]: `${O}.${Exclude<keyof (typeof Programs)[O], 'object'> & string}`;
}[DatapathObjectName];

export interface PacketRun {
  retval: number;
  /** The frame as the program left it. */
  data: Buffer;
  /** `data` parsed. */
  packet: ParsedFrame;
  /** The skb context after the run (tc programs). */
  skb: SkbContextOut | undefined;
  /** Every event the run submitted, in order. */
  events: DatapathEvent[];
  drops: DropEvent[];
  traces: TraceEvent[];
}

export interface PacketHarnessOptions {
  /** Part of the pin directory's name, for whoever finds it left behind. */
  tag: string;
  config?: DatapathOptions['config'];
  objects?: DatapathObjectName[];
}

// Small maps: a test needs a handful of entries, and the datapath's sizes would preallocate
// tens of megabytes per harness (the LRU conntrack map is never lazily allocated).
const TEST_MAP_SIZES: Record<string, number> = {
  cil_ep_v1: 256,
  cil_ipcache_v1: 256,
  cil_ct4_v1: 4096,
  cil_metrics_v1: 256,
};

const EVENT_TIMEOUT_MS = 5000;

export class PacketHarness {
  private readonly queue: DatapathEvent[] = [];
  private wake: (() => void) | undefined;

  private constructor(
    readonly dp: Datapath,
    private readonly reader: RingBufferReader,
    private readonly pins: { remove(): void },
  ) {}

  static open(opts: PacketHarnessOptions): PacketHarness {
    const pins = pinDir(`pkt-${opts.tag}`);
    let dp: Datapath | undefined;
    try {
      dp = Datapath.load({
        pinDir: pins.dir,
        config: opts.config,
        objects: opts.objects,
        maxEntries: TEST_MAP_SIZES,
      });
      const harness: { h?: PacketHarness } = {};
      const reader = dp.openEvents((batch) => harness.h?.deliver(batch), { keepAlive: false });
      harness.h = new PacketHarness(dp, reader, pins);
      return harness.h;
    } catch (err) {
      dp?.close();
      pins.remove();
      throw err;
    }
  }

  private deliver(batch: DatapathEvent[]): void {
    this.queue.push(...batch);
    this.wake?.();
  }

  private async takeEvents(n: number): Promise<DatapathEvent[]> {
    if (this.queue.length < n) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.wake = undefined;
          reject(
            new Error(`ring buffer: ${n} events submitted, ${this.queue.length} delivered in time`),
          );
        }, EVENT_TIMEOUT_MS);
        this.wake = () => {
          if (this.queue.length < n) return;
          clearTimeout(timer);
          this.wake = undefined;
          resolve();
        };
      });
    }
    return this.queue.splice(0, n);
  }

  program(name: ProgramName): BpfProgram {
    const [object, key] = name.split('.') as [DatapathObjectName, string];
    const progs = Programs[object] as Record<string, string>;
    const o = this.dp.objects[object];
    if (!o) throw new Error(`packet harness: object ${Programs[object].object} was not loaded`);
    return o.program(progs[key]!);
  }

  /**
   * Runs `name` (e.g. `lxc.fromContainer`) once on `frame`; tc programs get `skb` as their
   * context. Resolves once every event the run submitted has been read off the ring buffer.
   */
  async run(name: ProgramName, frame: Buffer, skb: SkbContextIn = {}): Promise<PacketRun> {
    const prog = this.program(name);
    const before = this.dp.readEventStats();
    const xdp = name.startsWith('xdp.');
    const r = xdp ? prog.testRun(frame) : prog.testRun(frame, 1, skb);
    const after = this.dp.readEventStats();
    if (after.lost !== before.lost) {
      throw new Error(`ring buffer: ${after.lost - before.lost} events lost during the run`);
    }
    const events = await this.takeEvents(Number(after.submitted - before.submitted));
    return {
      retval: r.retval,
      data: r.data,
      packet: parseFrame(r.data),
      skb: r.skb,
      events,
      drops: events.filter((e): e is DropEvent => e.kind === 'drop'),
      traces: events.filter((e): e is TraceEvent => e.kind === 'trace'),
    };
  }

  /** A metrics counter (reason 0: forwarded), summed over CPUs; zero when absent. */
  metric(reason: number, dir: number): { count: bigint; bytes: bigint } {
    const row = this.dp.readMetrics().find((m) => m.reason === reason && m.dir === dir);
    return { count: row?.count ?? 0n, bytes: row?.bytes ?? 0n };
  }

  /** Empties endpoints, ipcache, conntrack and metrics, for a test that starts from nothing. */
  reset(): void {
    this.dp.endpoints.map.clear();
    this.dp.ipcache.map.clear();
    this.dp.ct4.map.clear();
    this.dp.metrics.map.clear();
    this.queue.length = 0;
  }

  close(): void {
    try {
      this.reader.close();
      this.dp.close();
    } finally {
      this.pins.remove();
    }
  }
}

/** The skb mark that carries a source identity between the programs (bpf/lib/common.h
 * identity_to_mark: Cilium's MARK_MAGIC_IDENTITY layout). */
export function identityMark(identity: number): number {
  return (((identity & 0xffff) << 16) | 0x0f00 | ((identity >>> 16) & 0xff)) >>> 0;
}
