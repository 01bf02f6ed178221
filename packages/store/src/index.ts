export { ResourceStore, problemToError } from './store.js';
export type { RawEvent, StoredResource, WatchEventType, WatchHandle } from './store.js';
export { Informer, StatusInformer } from './informer.js';
export type { InformerEvent, InformerMetrics, InformerOptions, ObjectOf } from './informer.js';
