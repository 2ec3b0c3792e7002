import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../../../lib/logger.js';

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
    log.info({ authorization: secrets[0], token: secrets[1], creds: { secretAccessKey: secrets[2], sessionToken: secrets[5] }, signature: secrets[3], password: secrets[4] }, 'hello');
    log.info({ req: { headers: { authorization: secrets[0] } } }, 'request');
    log.info({ response: { headers: { 'x-men-signature': secrets[3] } } }, 'mender');
    const out = lines.join('');
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out.match(/\[redacted\]/g)?.length).toBe(8);
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ level: 'info', name: 'test', module: 'x', msg: 'hello', authorization: '[redacted]' });
  });
});
