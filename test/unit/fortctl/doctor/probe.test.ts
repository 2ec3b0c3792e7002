import { describe, expect, it } from 'vitest';
import { describeFailure } from '../../../../fortctl/doctor/probe.js';
import { ProxyError } from '../../../../lib/proxy.js';

const err = (code: string, message = 'x', extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(message), { code, ...extra });

describe('doctor describeFailure', () => {
  it('says what a TLS verification failure means, with its code', () => {
    expect(describeFailure(err('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 5000)).toBe(
      'certificate signed by unknown authority (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
    );
    expect(describeFailure(err('CERT_HAS_EXPIRED'), 5000)).toBe(
      'server certificate expired (or the host clock is ahead) (CERT_HAS_EXPIRED)',
    );
    expect(
      describeFailure(
        err('ERR_TLS_CERT_ALTNAME_INVALID', 'm', {
          reason: "Host: a.example. is not in the cert's altnames: DNS:b.example",
        }),
        5000,
      ),
    ).toBe(
      "hostname mismatch: Host: a.example. is not in the cert's altnames: DNS:b.example (ERR_TLS_CERT_ALTNAME_INVALID)",
    );
    expect(describeFailure(err('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), 5000)).toBe(
      'the server does not trust our client certificate (unknown CA) (ERR_SSL_TLSV1_ALERT_UNKNOWN_CA)',
    );
  });

  it("names the timeout, keeps a proxy's own message and an unknown code's", () => {
    expect(describeFailure(err('ETIMEDOUT'), 3000)).toBe('no answer within 3000 ms');
    expect(
      describeFailure(new ProxyError('proxy 127.0.0.1:3128 refused CONNECT a:443 (403)', 403, undefined), 5000),
    ).toBe('proxy 127.0.0.1:3128 refused CONNECT a:443 (403)');
    expect(describeFailure(err('EWEIRD', 'something odd'), 5000)).toBe('something odd (EWEIRD)');
  });

  it('reads a reset right after a handshake with our client certificate as its refusal (TLS 1.3)', () => {
    expect(describeFailure(err('ECONNRESET'), 5000, true)).toBe(
      'the server hung up right after the TLS handshake: it refused our client certificate (ECONNRESET)',
    );
    expect(describeFailure(err('ECONNRESET'), 5000, false)).toBe('connection reset by the peer (ECONNRESET)');
  });
});
