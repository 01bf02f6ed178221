import type { Command } from '../cli.js';
import { bpfCommand, endpointCommand } from './datapath.js';
import { ipamCommand } from './ipam.js';
import { identityCommand } from './identity.js';
import { labCommand } from './lab.js';
import { monitorCommand } from './monitor.js';
import { applyCommand, deleteCommand, getCommand } from './resources.js';
import { securityCommand } from './security.js';
import { statusCommand } from './status.js';

export const commands: Command[] = [
  statusCommand,
  applyCommand,
  getCommand,
  deleteCommand,
  ipamCommand,
  identityCommand,
  endpointCommand,
  bpfCommand,
  monitorCommand,
  securityCommand,
  labCommand,
];
