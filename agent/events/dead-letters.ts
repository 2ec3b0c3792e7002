import type Database from 'better-sqlite3';
import type { DeadLetterView } from '../../lib/admin-client.js';

/**
 * Read side of the dead-letter table for operators (`fortctl events dead`): newest first, without
 * the payloads (customer data stays in the store; the reason names the field or error).
 */
export function createDeadLetterReader(db: Database.Database) {
  const list = db.prepare(
    'SELECT seq, received_at AS receivedAt, topic, reason_code AS reasonCode, reason, event_id AS eventId, type, size FROM dead_letters ORDER BY seq DESC LIMIT ?',
  );
  return { list: (limit: number) => list.all(limit) as DeadLetterView[] };
}
export type DeadLetterReader = ReturnType<typeof createDeadLetterReader>;
