// Last-resort cleanup: whatever a test started or created is undone when the process exits,
// also when a test threw before its own teardown ran or the runner was interrupted.
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';

type SyncUndo = () => void;

const pending = new Map<number, SyncUndo>();
let nextId = 1;
let installed = false;

function runAll(): void {
  const undos = [...pending.values()].reverse();
  pending.clear();
  for (const undo of undos) {
    try {
      undo();
    } catch {
      // Best effort: one failed undo must not stop the others.
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', runAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      runAll();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Registers a synchronous undo to run at exit; returns a function that forgets it. */
export function atExit(undo: SyncUndo): () => void {
  install();
  const id = nextId++;
  pending.set(id, undo);
  return () => pending.delete(id);
}

export function atExitKill(pid: number): () => void {
  return atExit(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  });
}

export function atExitRemoveDir(dir: string): () => void {
  return atExit(() => rmSync(dir, { recursive: true, force: true }));
}

export function atExitRun(cmd: string, args: string[]): () => void {
  return atExit(() => {
    execFileSync(cmd, args, { stdio: 'ignore' });
  });
}
