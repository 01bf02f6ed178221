// Ring buffer consumption. A native thread drains the kernel ring and delivers records in
// batches on the event loop; the loop never blocks on the kernel. While JavaScript is behind,
// the thread waits (bounded queue), the ring fills, and the BPF programs count what they
// could not report instead of slowing down.
import { BpfError, ErrorCodes } from './errors.js';
import { MapType, type BpfMap } from './map.js';
import { native, type NativeHandle } from './native.js';

export interface RingBufferOptions {
  /** Records per batch at most (default 256). */
  maxBatch?: number;
  /** Whether an open reader keeps the process alive (default true, like a socket). */
  keepAlive?: boolean;
  /** Errors of the reader thread and exceptions thrown by the batch callback. */
  onError?: (err: Error) => void;
}

// Open readers are referenced here so that a reader nobody holds keeps delivering instead of
// being collected and silently stopped.
const open = new Set<RingBufferReader>();

export class RingBufferReader {
  private handle: NativeHandle | undefined;

  private constructor(
    readonly map: BpfMap,
    onBatch: (records: Buffer[]) => void,
    opts: RingBufferOptions,
  ) {
    const onError =
      opts.onError ??
      ((err: Error) => {
        // With no handler, a failure is as loud as an unhandled error event.
        throw err;
      });
    this.handle = native().ringbufOpen(
      map.fd,
      (err, records) => {
        if (err) {
          onError(err);
          return;
        }
        try {
          onBatch(records ?? []);
        } catch (e) {
          onError(e instanceof Error ? e : new Error(String(e)));
        }
      },
      opts.maxBatch ?? 256,
    );
    if (opts.keepAlive === false) native().ringbufRef(this.handle, false);
    open.add(this);
  }

  static open(
    map: BpfMap,
    onBatch: (records: Buffer[]) => void,
    opts: RingBufferOptions = {},
  ): RingBufferReader {
    if (map.type !== MapType.RINGBUF) {
      throw new BpfError(`${map.name} is not a ring buffer (type ${map.type})`, {
        code: ErrorCodes.INVALID_ARG,
      });
    }
    return new RingBufferReader(map, onBatch, opts);
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  /** Records and batches delivered so far. */
  stats(): { samples: number; batches: number } {
    if (!this.handle)
      throw new BpfError('ring buffer reader is closed', { code: ErrorCodes.CLOSED });
    return native().ringbufStats(this.handle);
  }

  /** Stops the thread; batches not yet delivered are dropped. Idempotent. */
  close(): void {
    if (!this.handle) return;
    native().ringbufClose(this.handle);
    this.handle = undefined;
    open.delete(this);
  }
}

export function openRingBuffer(
  map: BpfMap,
  onBatch: (records: Buffer[]) => void,
  opts: RingBufferOptions = {},
): RingBufferReader {
  return RingBufferReader.open(map, onBatch, opts);
}
