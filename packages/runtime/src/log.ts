import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The root logger of a service: JSON lines with the component, node and instance on every line.
 * Components take a child with their own `subsys`, and log stable `event` names.
 *
 * The instance id changes once, when the micro service registers, after children already exist.
 * It is read per line (pino's mixin, which children inherit) rather than bound: pino appends
 * bindings to a pre-serialised string, so re-binding it would write the key twice and leave the
 * children made earlier with the old id.
 */
export function createLogger(opts: {
  component: string;
  node: string;
  instanceId: () => string;
  level: LevelWithSilent;
  destination?: DestinationStream;
}): Logger {
  const base = { component: opts.component, node: opts.node };
  return pino(
    {
      level: opts.level,
      base,
      mixin: () => ({ instance: opts.instanceId() }),
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
