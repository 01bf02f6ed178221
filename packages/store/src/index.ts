export { ResourceStore, problemToError } from './store.js';
export type { RawEvent, StoredResource, WatchEventType, WatchHandle } from './store.js';
export { Informer } from './informer.js';
export type { InformerEvent, InformerOptions } from './informer.js';
export { WorkQueue } from './queue.js';
export type { Backoff } from './queue.js';
