// Message schemas: validated at runtime at every boundary and exportable as JSON Schema, so the
// wire is documented by the same source that checks it.
import { z } from 'zod';

import { errorCodes } from './errors.js';

export const WireErrorSchema = z.object({
  code: z.enum(
    Object.keys(errorCodes) as [keyof typeof errorCodes, ...(keyof typeof errorCodes)[]],
  ),
  message: z.string(),
  field: z.string().optional(),
});

export const HealthCheckSchema = z.object({
  name: z.string(),
  ok: z.boolean(),
  detail: z.string().optional(),
});

/** What a service instance answers on its health subject. */
export const HealthReportSchema = z.object({
  component: z.string(),
  instanceId: z.string(),
  node: z.string(),
  version: z.string(),
  startedAt: z.iso.datetime(),
  /** Alive: the process answers. Always true in a reply; absence of a reply means not alive. */
  alive: z.literal(true),
  /** Ready: NATS connected and every readiness check (such as initial sync) passes. */
  ready: z.boolean(),
  checks: z.array(HealthCheckSchema),
});
export type HealthReport = z.infer<typeof HealthReportSchema>;

/** The value stored under a lease key. */
export const LeaseRecordSchema = z.object({
  holder: z.string().min(1),
  /** Fencing token: the KV revision of the write that acquired the lease. 0 until known. */
  token: z.number().int().nonnegative(),
  ttlMs: z.number().int().positive(),
  acquiredAt: z.iso.datetime(),
  renewedAt: z.iso.datetime(),
});
export type LeaseRecord = z.infer<typeof LeaseRecordSchema>;

/** One service instance as `ciliate status -o json` shows it. */
export const StatusInstanceSchema = z.object({
  component: z.string(),
  instanceId: z.string(),
  node: z.string(),
  version: z.string(),
  startedAt: z.iso.datetime().nullable(),
  uptimeSeconds: z.number().nonnegative().nullable(),
  health: z.enum(['ready', 'not-ready', 'unreachable']),
  checks: z.array(HealthCheckSchema),
});
export type StatusInstance = z.infer<typeof StatusInstanceSchema>;

/** `ciliate status -o json`: stable, documented in docs/cli.md. */
export const StatusReportSchema = z.object({
  apiVersion: z.literal('ciliate.io/v1'),
  kind: z.literal('Status'),
  nats: z.object({ url: z.string(), connected: z.boolean(), serverVersion: z.string().nullable() }),
  instances: z.array(StatusInstanceSchema),
  /**
   * Instances the current context expects (a lab lists every service it runs) that no running
   * instance matches: a killed process shows here. Absent when nothing is expected.
   */
  missing: z.array(z.object({ component: z.string(), node: z.string() })).optional(),
  summary: z.object({
    total: z.number().int(),
    ready: z.number().int(),
    notReady: z.number().int(),
    unreachable: z.number().int(),
    missing: z.number().int().optional(),
  }),
});
export type StatusReport = z.infer<typeof StatusReportSchema>;

const registry = {
  WireError: WireErrorSchema,
  HealthReport: HealthReportSchema,
  LeaseRecord: LeaseRecordSchema,
  StatusReport: StatusReportSchema,
} as const;

export type WireSchemaName = keyof typeof registry;

export const wireSchemaNames = Object.keys(registry) as WireSchemaName[];

export function wireSchema(name: WireSchemaName): z.ZodType {
  return registry[name];
}

/** JSON Schema (draft 2020-12) of a wire message. */
export function jsonSchemaOf(name: WireSchemaName): Record<string, unknown> {
  return z.toJSONSchema(registry[name], { target: 'draft-2020-12' });
}
