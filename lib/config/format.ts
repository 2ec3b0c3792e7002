import type { z } from 'zod';

type Issue = z.core.$ZodIssue;

/** Turn zod issues into `field.path: reason, got <value>` lines. */
export function formatIssues(issues: readonly Issue[], raw: unknown): string[] {
  return issues
    .map((issue) => {
      const path = issue.path.map(String).join('.');
      if (issue.code === 'unrecognized_keys') {
        const where = path ? `${path}.` : '';
        return issue.keys
          .map((k) => `${where}${k}: unknown field (check the spelling; see the configuration reference)`)
          .join('\n');
      }
      const value = valueAt(raw, issue.path);
      // A field that may carry a secret (a URL with a password in it) is not echoed back.
      const redact = issue.code === 'custom' && issue.params?.['redactValue'] === true;
      const reason = !value.found
        ? 'required field is missing'
        : redact
          ? issue.message
          : `${issue.message}, got ${show(value.value)}`;
      return `${path || '(root)'}: ${reason}`;
    })
    .flatMap((l) => l.split('\n'));
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): { found: boolean; value?: unknown } {
  let cur: unknown = raw;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !(key in cur)) return { found: false };
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return { found: true, value: cur };
}

function show(v: unknown): string {
  if (v instanceof Date) return v.toISOString();
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
