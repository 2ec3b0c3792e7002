import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { LightMyRequestResponse as Response } from 'fastify';
import { ERRORS, type FortErrorCode } from '../../lib/errors.js';
import { createLogger, type Logger } from '../../lib/logger.js';
import { openAuditStore } from '../../agent/audit/store.js';
import { openStore } from '../../agent/store/database.js';
import { tempDir } from './fort.js';

// Shared by the route tests that drive the agent's APIs in-process with fastify.inject().

export const PROBLEM_JSON = 'application/problem+json; charset=utf-8';

/**
 * An RFC 9457 answer as the error catalogue (lib/error-catalogue.ts) gives `code`: its status
 * (unless the framework decided another, as for a 415), the problem content type, and
 * `{type, title, status, code}`, with a `requestId`. Returns the body for further checks.
 */
export function expectProblem(
  res: Response,
  code: FortErrorCode,
  status: number = ERRORS[code].status,
): Record<string, unknown> {
  expect({ status: res.statusCode, type: res.headers['content-type'] }).toEqual({ status, type: PROBLEM_JSON });
  const body = res.json<Record<string, unknown>>();
  expect(body).toMatchObject({
    type: `https://fort.dev/problems/${code.toLowerCase()}`,
    title: ERRORS[code].title,
    status,
    code,
    requestId: expect.any(String),
  });
  return body;
}

/** The product's logger (redaction included) writing into `lines`, so a test can read what was logged. */
export function collectingLogger(name: string): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return {
    log: createLogger({ name, level: 'debug', destination: { write: (line: string) => void lines.push(line) } }),
    lines,
  };
}

/** The agent's store and audit store (real SQLite files) in a temp dir, with the apps directory beside them. */
export function tempStores(prefix: string, log: Logger) {
  const dir = tempDir(prefix);
  const store = openStore({ path: join(dir, 'agent.db'), log });
  const audit = openAuditStore({ path: join(dir, 'audit.db'), retentionDays: 30, log });
  return {
    dir,
    db: store.db,
    auditDb: audit.db,
    appsDir: join(dir, 'apps'),
    close() {
      audit.close();
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Warnings this process emits from now on (Fastify's FSTDEP deprecations among them): the APIs are built without any. */
export function processWarnings(): string[] {
  const seen: string[] = [];
  process.on('warning', (w) => void seen.push(`${w.name}: ${w.message}`));
  return seen;
}
