// Spec versions this plugin speaks, and what each one allows.
import { CniError, CniErrorCode } from './errors.js';

export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export const CURRENT_VERSION = '1.1.0';

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function isSupportedVersion(v: string): boolean {
  return (SUPPORTED_VERSIONS as readonly string[]).includes(v);
}

/** The lowest spec version that defines each command. */
const SINCE: Record<string, string> = { CHECK: '0.4.0', GC: '1.1.0', STATUS: '1.1.0' };

/** Code 1 when the config's version does not define the command. */
export function checkCommandVersion(command: string, cniVersion: string): void {
  const since = SINCE[command];
  if (since && compareVersions(cniVersion, since) < 0) {
    throw new CniError(
      CniErrorCode.INCOMPATIBLE_VERSION,
      `cniVersion: Invalid value: "${cniVersion}": ${command} needs spec version ${since} or later`,
    );
  }
}

/** The VERSION command's answer. */
export function versionResult(cniVersion: string = CURRENT_VERSION): {
  cniVersion: string;
  supportedVersions: string[];
} {
  return { cniVersion, supportedVersions: [...SUPPORTED_VERSIONS] };
}
