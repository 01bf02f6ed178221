// The pure state transitions take plain JSON state and return a new, frozen state. Rebuilding
// the lookup index (IP -> owner, slot bitmaps) on every call would make each call linear in the
// pool size; instead the index built for one state is handed on to the state the call returns.
// Only states this module froze are trusted: a state parsed from JSON, or edited by a caller,
// never hits the cache, so a stale index can never hand out an address twice.

export class IndexCache<S extends object, I> {
  private readonly map = new WeakMap<S, I>();

  /** Removes and returns the index of `state`; the caller will move it to the next state. */
  take(state: S): I | undefined {
    if (!Object.isFrozen(state)) return undefined;
    const index = this.map.get(state);
    if (index !== undefined) this.map.delete(state);
    return index;
  }

  /** Looks at the index of `state` without moving it (read-only callers). */
  peek(state: S): I | undefined {
    return Object.isFrozen(state) ? this.map.get(state) : undefined;
  }

  put(state: S, index: I): void {
    if (Object.isFrozen(state)) this.map.set(state, index);
  }
}

/** Freezes an object and every plain object or array below it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value as object)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
