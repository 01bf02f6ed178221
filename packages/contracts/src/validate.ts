import type { z } from 'zod';

import { CiliateError } from './errors.js';

/** `a.b[0].c` from a zod issue path, the way kubectl names fields. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

/**
 * Parses `data` with `schema`, or throws a `bad_request` CiliateError naming the first offending
 * field and the reason (all problems are listed in the message).
 */
export function parseWire<S extends z.ZodType>(
  schema: S,
  data: unknown,
  what: string,
): z.output<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => {
    const field = fieldPath(i.path);
    return { field, text: field === '' ? i.message : `${field}: ${i.message}` };
  });
  const first = issues[0];
  throw new CiliateError(
    'bad_request',
    `invalid ${what}: ${issues.map((i) => i.text).join('; ')}`,
    {
      ...(first && first.field !== '' ? { field: first.field } : {}),
    },
  );
}
