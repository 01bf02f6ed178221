// Node names. Kubernetes names Node objects with DNS-1123 subdomains (at most 253 characters,
// lower-case letters, digits, '-' and '.'), so `n1.example` is a node name and every part of
// Ciliate must accept it. Where a node name has to fit somewhere narrower (a NATS subject token
// or KV key token, where '.' separates tokens), it is encoded with nodeToken() rather than the
// rule narrowed: '_' never occurs in a node name, so '.' -> '_' is reversible.
import { z } from 'zod';

export const NODE_NAME_MAX_LENGTH = 253;

/** The whole rule as one expression (length included), for settings that take a pattern. */
export const NODE_NAME_PATTERN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export const NODE_NAME_RULE =
  'must be a lower-case DNS-1123 subdomain of at most 253 characters (letters, digits, "-" and "."; starting and ending with a letter or digit)';

/** Why `value` is not a node name, or undefined when it is one. */
export function nodeNameProblem(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0) return 'must be a non-empty string';
  if (value.length > NODE_NAME_MAX_LENGTH || !NODE_NAME_PATTERN.test(value)) return NODE_NAME_RULE;
  return undefined;
}

export function isNodeName(value: unknown): value is string {
  return nodeNameProblem(value) === undefined;
}

/** The node-name rule as a schema field, for wire messages. */
export const NodeNameSchema = z.string().superRefine((v, ctx) => {
  const problem = nodeNameProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * A node name as one subject or KV-key token ('.' -> '_'). The caller validates the name first;
 * the token of a valid name is a valid token and nodeFromToken() gives the name back.
 */
export function nodeToken(node: string): string {
  return node.replaceAll('.', '_');
}

export function nodeFromToken(token: string): string {
  return token.replaceAll('_', '.');
}
