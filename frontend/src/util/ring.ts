// A fixed-capacity buffer: pushing past capacity drops the oldest item, so
// memory stays flat however long the dashboard runs.

export class Ring<T> {
  private readonly items: (T | undefined)[];
  private head = 0; // index of the next write
  private count = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("capacity must be a positive integer");
    this.items = new Array<T | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** Add `item`; returns the item it pushed out when full. */
  push(item: T): T | undefined {
    const evicted = this.count === this.capacity ? this.items[this.head] : undefined;
    this.items[this.head] = item;
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count += 1;
    return evicted;
  }

  clear(): void {
    this.items.fill(undefined);
    this.head = 0;
    this.count = 0;
  }

  /** Items newest first. */
  newestFirst(limit = this.count): T[] {
    const out: T[] = [];
    const n = Math.min(limit, this.count);
    for (let i = 1; i <= n; i += 1) out.push(this.items[(this.head - i + this.capacity) % this.capacity] as T);
    return out;
  }
}
