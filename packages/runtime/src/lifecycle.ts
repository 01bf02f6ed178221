import type { Logger } from './log.js';

export interface Component {
  name: string;
  start?: () => Promise<void> | void;
  stop?: () => Promise<void> | void;
}

/** Starts components in the order they were added and stops the started ones in reverse. */
export class Lifecycle {
  private readonly components: Component[] = [];
  private started: Component[] = [];

  constructor(private readonly log: Logger) {}

  add(c: Component): void {
    this.components.push(c);
  }

  /** Starts the components not started yet (parts may be added between calls). */
  async start(): Promise<void> {
    while (this.started.length < this.components.length) {
      const c = this.components[this.started.length]!;
      const t0 = performance.now();
      await c.start?.();
      this.started.push(c);
      this.log.debug(
        { event: 'component.started', name: c.name, ms: Math.round(performance.now() - t0) },
        'started',
      );
    }
  }

  /** Stops everything started so far; a failing stop is logged and the rest still stop. */
  async stop(): Promise<void> {
    while (this.started.length > 0) {
      const c = this.started.pop()!;
      try {
        await c.stop?.();
        this.log.debug({ event: 'component.stopped', name: c.name }, 'stopped');
      } catch (err) {
        this.log.error(
          { event: 'component.stop_failed', name: c.name, err },
          'component failed to stop',
        );
      }
    }
  }
}
