import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Fastify from 'fastify';
import {
  cliExitCode,
  ConfigError,
  daemonExitCode,
  ERRORS,
  EXIT,
  FortError,
  problemExitCode,
  StoreError,
  TlsMaterialError,
} from '../../../lib/errors.js';
import { sendProblem } from '../../../lib/http-problem.js';
import { REPO } from '../../helpers/fort.js';

/** Product source: every process and lib/ (the dev cloud keeps codes of its own). */
const PRODUCT = ['agent', 'deployment-manager', 'engine', 'fortctl', 'lib'];

function sources(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** Every FORT_ERR_* in the product source, with the files that use it. */
function codesInSource(): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of PRODUCT.flatMap((d) => sources(join(REPO, d)))) {
    if (file.endsWith('error-catalogue.ts')) continue;
    for (const m of readFileSync(file, 'utf8').matchAll(/FORT_ERR_[A-Z0-9_]*[A-Z0-9]/g))
      found.set(m[0], [...(found.get(m[0]) ?? []), relative(REPO, file)]);
  }
  return found;
}

describe('error catalogue', () => {
  it('holds every FORT_ERR_* the product source uses (a new code goes into lib/error-catalogue.ts)', () => {
    const used = codesInSource();
    expect(used.size).toBeGreaterThan(30);
    const missing = [...used]
      .filter(([code]) => !Object.hasOwn(ERRORS, code))
      .map(([code, files]) => `${code} (${[...new Set(files)].join(', ')})`);
    expect(missing).toEqual([]);
  });

  it('lists no code the product never uses', () => {
    const used = codesInSource();
    expect(Object.keys(ERRORS).filter((code) => !used.has(code))).toEqual([]);
  });

  it('gives every code an HTTP error status, a title, an exit code of the shared map and a meaning', () => {
    const exits: number[] = Object.values(EXIT);
    for (const [code, e] of Object.entries(ERRORS)) {
      expect(code).toMatch(/^FORT_ERR_[A-Z0-9_]+$/);
      expect(e.status, code).toBeGreaterThanOrEqual(400);
      expect(e.status, code).toBeLessThan(600);
      expect(e.title, code).toMatch(/^[A-Z]/);
      expect(exits, code).toContain(e.exit);
      expect(e.exit, code).not.toBe(EXIT.OK);
      expect(e.doc.length, code).toBeGreaterThan(10);
    }
  });

  it("answers problems only through the typed sendProblem (sendRawProblem is the dev cloud's)", () => {
    const raw = PRODUCT.flatMap((d) => sources(join(REPO, d))).filter(
      (f) => !f.endsWith('http-problem.ts') && readFileSync(f, 'utf8').includes('sendRawProblem'),
    );
    expect(raw.map((f) => relative(REPO, f))).toEqual([]);
  });
});

describe('fatal or transient', () => {
  it("is the code's unless the call site says otherwise", () => {
    expect(new FortError('FORT_ERR_CONFIG', 'x').fatal).toBe(true);
    expect(new FortError('FORT_ERR_UPDATE_SERVER', 'x').fatal).toBe(false);
    expect(new FortError('FORT_ERR_BUSY', 'x').fatal).toBe(false);
    expect(new FortError('FORT_ERR_ARTIFACT', 'x', { fatal: false }).fatal).toBe(false);
    expect(new FortError('FORT_ERR_UPSTREAM', 'x', { fatal: true }).fatal).toBe(true);
  });
});

describe('exit codes', () => {
  it("a CLI exits with its error code's exit; anything unforeseen is internal (70)", () => {
    expect(cliExitCode(new ConfigError('fortctl.toml', ['admin.url: required']))).toBe(78);
    expect(cliExitCode(new TlsMaterialError('bad key'))).toBe(78);
    expect(cliExitCode(new FortError('FORT_ERR_CONFLICT', 'already paired'))).toBe(1);
    expect(cliExitCode(new FortError('FORT_ERR_NOT_FOUND', 'no previous release'))).toBe(1);
    expect(cliExitCode(new FortError('FORT_ERR_USAGE', 'x: no such file'))).toBe(1);
    expect(cliExitCode(new FortError('FORT_ERR_ADMIN_LINK', 'ECONNREFUSED'))).toBe(2);
    expect(cliExitCode(new FortError('FORT_ERR_BUSY', 'the deployment manager is busy'))).toBe(75);
    expect(cliExitCode(new Error('bug'))).toBe(70);
  });

  it('a daemon exits at start only with the codes systemd must not restart on (65, 78), else 70', () => {
    expect(daemonExitCode(new ConfigError('agent.toml', ['api.port: required']))).toBe(78);
    expect(daemonExitCode(new FortError('FORT_ERR_SECRET_PERMISSIONS', 'mode 0644'))).toBe(78);
    expect(daemonExitCode(new StoreError('newer schema', 'FORT_ERR_STORE_SCHEMA'))).toBe(65);
    expect(daemonExitCode(new StoreError('state file', 'FORT_ERR_STATE_FILE'))).toBe(70);
    expect(daemonExitCode(new FortError('FORT_ERR_ADMIN_LINK', 'x'))).toBe(70);
    expect(daemonExitCode(new Error('bug'))).toBe(70);
  });

  it("a peer's problem exits as its code when it is about the request, else 2 (the same for every command)", () => {
    expect(problemExitCode(409, 'FORT_ERR_CONFLICT')).toBe(1);
    expect(problemExitCode(404, 'FORT_ERR_NOT_FOUND')).toBe(1);
    expect(problemExitCode(422, 'FORT_ERR_DEFINITION')).toBe(1);
    expect(problemExitCode(422, 'FORT_ERR_PAIRING')).toBe(2);
    expect(problemExitCode(403, 'FORT_ERR_FORBIDDEN')).toBe(2);
    expect(problemExitCode(403, undefined)).toBe(2);
    // The agent's own key or config is not fortctl's bad config: refused, 2.
    expect(problemExitCode(422, 'FORT_ERR_TLS_MATERIAL')).toBe(2);
    expect(problemExitCode(503, 'FORT_ERR_NOT_CONFIGURED')).toBe(2);
    expect(problemExitCode(500, 'FORT_ERR_INTERNAL')).toBe(2);
    expect(problemExitCode(502, 'FORT_ERR_UPSTREAM')).toBe(2);
    expect(problemExitCode(409, 'FORT_ERR_SOMETHING_ELSE')).toBe(2);
  });
});

describe('sendProblem', () => {
  async function answer(send: Parameters<typeof sendProblem>[1], detail?: string, opts?: { status?: number }) {
    const app = Fastify();
    app.get('/', async (_req, reply) => sendProblem(reply, send, detail, opts));
    const res = await app.inject({ method: 'GET', url: '/' });
    await app.close();
    return { status: res.statusCode, type: res.headers['content-type'], body: res.json<Record<string, unknown>>() };
  }

  it("derives status and title from the error's code; its message is the detail", async () => {
    const res = await answer(new FortError('FORT_ERR_CONFLICT', 'this fort is already paired'));
    expect(res.status).toBe(409);
    expect(res.type).toBe('application/problem+json; charset=utf-8');
    expect(res.body).toEqual({
      type: 'https://fort.dev/problems/fort_err_conflict',
      title: 'Conflict',
      status: 409,
      code: 'FORT_ERR_CONFLICT',
      detail: 'this fort is already paired',
      requestId: expect.any(String),
    });
  });

  it('takes a catalogue code with a detail, or an error with a detail of its own', async () => {
    expect((await answer('FORT_ERR_NOT_FOUND', 'no app x on this fort')).body).toMatchObject({
      status: 404,
      title: 'Not found',
      code: 'FORT_ERR_NOT_FOUND',
      detail: 'no app x on this fort',
    });
    expect((await answer('FORT_ERR_INTERNAL')).body).not.toHaveProperty('detail');
    const tls = await answer(
      new TlsMaterialError('key does not match'),
      'key does not match; still serving the previous certificates',
    );
    expect([tls.status, tls.body['detail']]).toEqual([
      422,
      'key does not match; still serving the previous certificates',
    ]);
  });

  it("keeps the status a framework's refusal has decided", async () => {
    expect((await answer('FORT_ERR_BAD_REQUEST', 'takes application/json', { status: 415 })).body).toMatchObject({
      status: 415,
      code: 'FORT_ERR_BAD_REQUEST',
      title: 'Bad request',
    });
  });

  it('compiles only with catalogue codes', () => {
    const typed = (reply: Parameters<typeof sendProblem>[0]) => {
      // @ts-expect-error a code outside the catalogue does not compile
      void sendProblem(reply, 'FORT_ERR_NOT_IN_THE_CATALOGUE');
      // @ts-expect-error neither does a status picked by hand
      void sendProblem(reply, 409, 'FORT_ERR_CONFLICT', 'Conflict');
    };
    expect(typed).toBeTypeOf('function');
  });
});
