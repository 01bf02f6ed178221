import type { HealthReport } from '@ciliate/contracts';

export type ReadinessCheck = () => { ok: boolean; detail?: string };

/** Readiness: every registered check passes (NATS connected, initial sync done, ...). */
export class Readiness {
  private readonly checks = new Map<string, ReadinessCheck>();

  add(name: string, check: ReadinessCheck): void {
    if (this.checks.has(name)) throw new Error(`readiness check "${name}" is registered twice`);
    this.checks.set(name, check);
  }

  /** A check that fails until `done()` is called, e.g. for an initial sync. */
  gate(name: string, detail = 'not done yet'): { done: () => void } {
    let ok = false;
    this.add(name, () => (ok ? { ok } : { ok, detail }));
    return { done: () => (ok = true) };
  }

  evaluate(): { ready: boolean; checks: HealthReport['checks'] } {
    const checks: HealthReport['checks'] = [];
    let ready = true;
    for (const [name, check] of this.checks) {
      let result: { ok: boolean; detail?: string };
      try {
        result = check();
      } catch (err) {
        result = { ok: false, detail: err instanceof Error ? err.message : String(err) };
      }
      ready &&= result.ok;
      checks.push(
        result.detail === undefined
          ? { name, ok: result.ok }
          : { name, ok: result.ok, detail: result.detail },
      );
    }
    return { ready, checks };
  }
}
