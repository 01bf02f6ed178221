export { runCli, UsageError } from './cli.js';
export type { Command, CommandContext, Globals, Io } from './cli.js';
export { commands } from './commands/index.js';
export { collectStatus } from './commands/status.js';
export { DEFAULT_NATS_URL, contextFile, readContext, resolveNats } from './context.js';
export type { CliContext } from './context.js';
export { formatDuration, formatTable, render } from './output.js';
export type { OutputFormat } from './output.js';
