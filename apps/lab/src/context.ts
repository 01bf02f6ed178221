// What becomes of the CLI's context when a lab goes down. The context is the CLI's default
// target, so it must never be left on a lab that is gone while another one is still up: that
// would send every `ciliate ...` to a NATS nobody runs. Pure, so the rule has a unit test.

/** A lab as the decision needs it: its name, whether it is up, and when it was made. */
export interface LabSummary {
  name: string;
  up: boolean;
  createdAt: string;
}

export type ContextChange =
  { action: 'keep' } | { action: 'remove' } | { action: 'switch'; lab: string };

/**
 * `current` is the lab the context points at (undefined when there is no context, or it is not a
 * lab's: a context the lab did not write is never touched). The context stays on a lab that is
 * still up; otherwise it moves to the newest lab still up (the one the user most likely works
 * with), or goes when no lab is up.
 */
export function contextAfterDown(
  current: string | undefined,
  removed: string,
  labs: readonly LabSummary[],
): ContextChange {
  if (current === undefined) return { action: 'keep' };
  const up = labs.filter((l) => l.up && l.name !== removed);
  if (current !== removed && up.some((l) => l.name === current)) return { action: 'keep' };
  const newest = [...up].sort(
    (a, b) => b.createdAt.localeCompare(a.createdAt) || a.name.localeCompare(b.name),
  )[0];
  return newest ? { action: 'switch', lab: newest.name } : { action: 'remove' };
}
