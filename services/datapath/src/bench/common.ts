// Shared bits of the datapath benchmarks: argument parsing, percentiles, and the report, which
// always prints the command that reproduces the figures.
import { cpus, release } from 'node:os';

export function args(argv: string[] = process.argv.slice(2)): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of argv) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`${a}: Invalid value: expected --name=value`);
    out.set(m[1]!, m[2] ?? 'true');
  }
  return out;
}

export function intArg(a: Map<string, string>, name: string, dflt: number): number {
  const v = a.get(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`--${name}: Invalid value: "${v}": must be a positive integer`);
  return n;
}

/** Nearest-rank percentile of unsorted samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN;
  const s = [...samples].sort((x, y) => x - y);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export function machine(): string {
  return `${cpus().length} vCPU (${cpus()[0]?.model ?? 'unknown'}), Linux ${release()}, Node ${process.version}`;
}

export interface Row {
  metric: string;
  ours: number;
  baseline: number;
  unit: string;
  /** `higher`: ratio ours/baseline should be at least `target`; `lower`: at most. */
  better: 'higher' | 'lower';
  target?: number;
  /** An absolute bound on `ours` (same direction as `better`). */
  absolute?: number;
}

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** Prints a table (ours, baseline, ratio, verdict) and the reproducing command. */
export function report(title: string, rows: Row[], command: string, notes: string[] = []): void {
  const lines = [`\n== ${title} (${new Date().toISOString()}, ${machine()})`];
  for (const r of rows) {
    const ratio = r.ours / r.baseline;
    const checks: string[] = [];
    let pass = true;
    if (r.target !== undefined) {
      const ok = r.better === 'higher' ? ratio >= r.target : ratio <= r.target;
      pass &&= ok;
      checks.push(`ratio ${r.better === 'higher' ? '>=' : '<='} ${r.target}`);
    }
    if (r.absolute !== undefined) {
      const ok = r.better === 'higher' ? r.ours >= r.absolute : r.ours <= r.absolute;
      pass &&= ok;
      checks.push(`${r.better === 'higher' ? '>=' : '<'} ${r.absolute} ${r.unit}`);
    }
    lines.push(
      `  ${r.metric.padEnd(34)} ours ${fmt(r.ours).padStart(8)} ${r.unit.padEnd(8)} baseline ${fmt(r.baseline).padStart(8)}  ratio ${ratio.toFixed(2)}` +
        (checks.length ? `  target ${checks.join(', ')}: ${pass ? 'met' : 'NOT met'}` : ''),
    );
  }
  for (const n of notes) lines.push(`  note: ${n}`);
  lines.push(`  reproduce: ${command}`);
  process.stdout.write(lines.join('\n') + '\n');
}
