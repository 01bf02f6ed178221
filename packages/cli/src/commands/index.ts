import type { Command } from '../cli.js';
import { statusCommand } from './status.js';

export const commands: Command[] = [statusCommand];
