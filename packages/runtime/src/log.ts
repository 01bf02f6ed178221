import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * The root logger of a service: JSON lines with the component, node and instance on every line.
 * Components take a child with their own `subsys`, and log stable `event` names.
 */
export function createLogger(opts: {
  component: string;
  node: string;
  instanceId: string;
  level: LevelWithSilent;
  destination?: DestinationStream;
}): Logger {
  const base = { component: opts.component, node: opts.node, instance: opts.instanceId };
  return pino(
    { level: opts.level, base, timestamp: pino.stdTimeFunctions.isoTime },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
