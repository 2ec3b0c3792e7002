import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger, redactSecrets } from '../../../lib/logger.js';

describe('logger', () => {
  it('redacts tokens, keys, signatures and passwords, top level and nested', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger({ level: 'info', name: 'test', destination }).child({ module: 'x' });
    const secrets = ['Bearer eyJsecret', 'tok-123', 'AKIA-secret-key', 'sig==', 'hunter2', 'sess-tok'];
    log.info(
      {
        authorization: secrets[0],
        token: secrets[1],
        creds: { secretAccessKey: secrets[2], sessionToken: secrets[5] },
        signature: secrets[3],
        password: secrets[4],
      },
      'hello',
    );
    log.info({ req: { headers: { authorization: secrets[0] } } }, 'request');
    log.info({ response: { headers: { 'x-men-signature': secrets[3] } } }, 'mender');
    const out = lines.join('');
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out.match(/\[redacted\]/g)?.length).toBe(8);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({
      level: 'info',
      name: 'test',
      module: 'x',
      msg: 'hello',
      authorization: '[redacted]',
    });
  });

  it("finds secret keys at any depth and in any case, in arrays, without touching the caller's object", () => {
    const input = {
      a: { b: { c: { Authorization: 'Bearer x' } } },
      list: [{ password: 'p' }, 'plain'],
      safe: 1,
      keyId: 'kid-1',
    };
    const out = redactSecrets(input);
    expect(out).toEqual({
      a: { b: { c: { Authorization: '[redacted]' } } },
      list: [{ password: '[redacted]' }, 'plain'],
      safe: 1,
      keyId: 'kid-1',
    });
    expect(input.a.b.c.Authorization).toBe('Bearer x');
    expect(input.list[0]).toEqual({ password: 'p' });
    const clean = { x: { y: 1 } };
    expect(redactSecrets(clean)).toBe(clean); // nothing to hide: no copy
  });

  it('leaves errors to the error serializer and still logs their message and stack', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const log = createLogger({ level: 'info', name: 'test', destination });
    log.error({ err: Object.assign(new Error('boom'), { code: 'E_X' }), headers: { cookie: 'sid=1' } }, 'failed');
    const line = JSON.parse(lines[0]!) as {
      err: { message: string; code: string; stack: string };
      headers: { cookie: string };
    };
    expect(line.err).toMatchObject({ message: 'boom', code: 'E_X' });
    expect(line.err.stack).toContain('Error: boom');
    expect(line.headers.cookie).toBe('[redacted]');
  });
});
