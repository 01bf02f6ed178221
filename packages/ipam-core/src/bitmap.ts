// A fixed-size bit set with a next-free search, used to carve a cluster CIDR into per-node
// slots: 2^16 slots (10.0.0.0/8 in /24s) is 8 KiB, and finding a free slot skips full 32-slot
// words at a time, so carving thousands of nodes stays linear in the number of nodes.

export class SlotBitmap {
  readonly size: number;
  private readonly words: Uint32Array;
  private usedCount = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad bitmap size ${size}`);
    this.size = size;
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  get used(): number {
    return this.usedCount;
  }

  get free(): number {
    return this.size - this.usedCount;
  }

  has(slot: number): boolean {
    const w = this.words[slot >>> 5] ?? 0;
    return (w & (1 << (slot & 31))) !== 0;
  }

  /** Marks a slot; returns false when it was already set. */
  set(slot: number): boolean {
    this.check(slot);
    const i = slot >>> 5;
    const bit = 1 << (slot & 31);
    const w = this.words[i] as number;
    if ((w & bit) !== 0) return false;
    this.words[i] = w | bit;
    this.usedCount++;
    return true;
  }

  /** Clears a slot; returns false when it was not set. */
  clear(slot: number): boolean {
    this.check(slot);
    const i = slot >>> 5;
    const bit = 1 << (slot & 31);
    const w = this.words[i] as number;
    if ((w & bit) === 0) return false;
    this.words[i] = w & ~bit;
    this.usedCount--;
    return true;
  }

  /** First free slot at or after `from`, wrapping around once; -1 when full. */
  findFree(from = 0): number {
    if (this.usedCount >= this.size) return -1;
    const start = from >= 0 && from < this.size ? from : 0;
    const hit = this.findFreeIn(start, this.size);
    if (hit >= 0) return hit;
    return this.findFreeIn(0, start);
  }

  /** First free slot in [from, to), no wrapping; -1 when there is none. */
  findFreeIn(from: number, to: number): number {
    let slot = Math.max(0, from);
    to = Math.min(to, this.size);
    while (slot < to) {
      const i = slot >>> 5;
      const w = this.words[i] as number;
      if (w === 0xffffffff) {
        slot = (i + 1) << 5;
        continue;
      }
      // Bits below `slot` in this word are outside the scan; treat them as taken.
      const masked = (w | ((1 << (slot & 31)) - 1)) >>> 0;
      if (masked !== 0xffffffff) {
        const free = (i << 5) + lowestZeroBit(masked);
        return free < to ? free : -1;
      }
      slot = (i + 1) << 5;
    }
    return -1;
  }

  private check(slot: number): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= this.size) {
      throw new RangeError(`slot ${slot} outside bitmap of ${this.size}`);
    }
  }
}

function lowestZeroBit(word: number): number {
  const inverted = ~word >>> 0;
  // Isolate the lowest set bit of the inverted word, then count trailing zeros.
  return 31 - Math.clz32(inverted & -inverted);
}
