import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { identifier } from '../../lib/config/fields.js';

/** AWS IoT's message size limit: anything larger cannot have come through the bridge. */
export const MAX_EVENT_BYTES = 128 * 1024;

export const SUPPORTED_VERSIONS = [1] as const;

/** Dotted lower-case names: `ping`, `reload.requested`, `app.version_created`. */
export const EVENT_TYPE = /^[a-z][a-z0-9]*(\.[a-z][a-z0-9_]*)*$/;

/**
 * Envelope v1. Unknown top-level keys are dropped, not rejected: the cloud upgrades
 * before the forts do, so additive fields must not dead-letter events on older agents.
 * A change an old agent cannot safely ignore bumps `v`, which it refuses outright.
 */
export const eventV1 = z.object({
  v: z.literal(1),
  id: z.uuid(),
  type: z
    .string()
    .max(100)
    .regex(EVENT_TYPE, { error: 'expected a dotted lower-case event type such as reload.requested' }),
  fortId: identifier(),
  ts: z.iso.datetime({ offset: true }),
  data: z.record(z.string(), z.unknown()).default({}),
});

export type FortEvent = z.output<typeof eventV1>;

export type ParseFailureCode = 'too_large' | 'bad_json' | 'bad_envelope' | 'unsupported_version' | 'wrong_fort';

export type ParseResult =
  { ok: true; event: FortEvent } | { ok: false; code: ParseFailureCode; reason: string; id?: string; type?: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Validate one inbound payload. Reasons name the offending field (zod path) but never
 * quote payload data: they go to logs and to the dead-letter table.
 */
export function parseEvent(payload: Buffer, expectedFortId: string): ParseResult {
  if (payload.length > MAX_EVENT_BYTES) {
    return { ok: false, code: 'too_large', reason: `payload is ${payload.length} bytes, limit is ${MAX_EVENT_BYTES}` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(utf8.decode(payload));
  } catch {
    // V8's SyntaxError quotes the input, so the message is not passed on.
    return { ok: false, code: 'bad_json', reason: `payload (${payload.length} bytes) is not valid UTF-8 JSON` };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, code: 'bad_envelope', reason: '(root): expected a JSON object' };
  }
  const obj = raw as Record<string, unknown>;
  const hints = diagnostics(obj);
  // `v` decides the schema, so it is checked before anything else.
  if (obj.v === undefined) return { ok: false, code: 'bad_envelope', reason: 'v: required', ...hints };
  if (typeof obj.v !== 'number') return { ok: false, code: 'bad_envelope', reason: 'v: expected a number', ...hints };
  if (!(SUPPORTED_VERSIONS as readonly number[]).includes(obj.v)) {
    return {
      ok: false,
      code: 'unsupported_version',
      reason: `v: version ${obj.v} is not supported (supported: ${SUPPORTED_VERSIONS.join(', ')})`,
      ...hints,
    };
  }
  const parsed = eventV1.safeParse(obj);
  if (!parsed.success) return { ok: false, code: 'bad_envelope', reason: formatIssues(parsed.error.issues), ...hints };
  const event = parsed.data;
  if (event.fortId !== expectedFortId) {
    return {
      ok: false,
      code: 'wrong_fort',
      reason: `fortId: event is for fort "${event.fortId}", this is fort "${expectedFortId}"`,
      id: event.id,
      type: event.type,
    };
  }
  return { ok: true, event };
}

/** A new outgoing v1 envelope (status events, replies). */
export function createEvent(
  fortId: string,
  type: string,
  data: Record<string, unknown>,
  now: Date = new Date(),
): FortEvent {
  return { v: 1, id: randomUUID(), type, fortId, ts: now.toISOString(), data };
}

export const statusTopic = (fortId: string): string => `forts/${fortId}/status`;
export const eventsTopic = (fortId: string): string => `forts/${fortId}/events`;

/** id and type of a rejected event, if present and short enough to be worth recording. */
function diagnostics(obj: Record<string, unknown>): { id?: string; type?: string } {
  const out: { id?: string; type?: string } = {};
  if (typeof obj.id === 'string' && obj.id.length <= 100) out.id = obj.id;
  if (typeof obj.type === 'string' && obj.type.length <= 100) out.type = obj.type;
  return out;
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): string {
  const shown = issues
    .slice(0, 3)
    .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`);
  if (issues.length > 3) shown.push(`and ${issues.length - 3} more`);
  return shown.join('; ').slice(0, 500);
}
