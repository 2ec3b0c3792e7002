import { describe, expect, it } from 'vitest';
import { chmodSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import {
  bypassesProxy,
  describeProxyFailure,
  proxyAgentFor,
  resolveProxy,
  type ProxySettings,
} from '../../../lib/proxy.js';
import { ConfigError, FortError } from '../../../lib/errors.js';
import { readRuntimeEnv } from '../../../lib/runtime-env.js';
import { tempDir } from '../../helpers/fort.js';

const thrown = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a throw');
};

describe('resolveProxy', () => {
  const dir = tempDir('proxy-unit');
  const passwordFile = (name: string, content: string, mode = 0o600) => {
    const file = join(dir, name);
    writeFileSync(file, content, { mode });
    chmodSync(file, mode);
    return file;
  };

  it('is undefined when neither the config nor the environment names a proxy', () => {
    expect(resolveProxy(undefined, {})).toBeUndefined();
    expect(resolveProxy({ no_proxy: ['localhost'] }, { noProxy: 'example.com' })).toBeUndefined();
    expect(resolveProxy(undefined, { httpsProxy: '  ' })).toBeUndefined();
  });

  it('takes HTTPS_PROXY and NO_PROXY when the config says nothing', () => {
    const p = resolveProxy(undefined, {
      httpsProxy: 'http://proxy.corp:3128',
      noProxy: 'localhost, .corp.example ,10.0.0.1',
    });
    expect(p?.url.href).toBe('http://proxy.corp:3128/');
    expect(p?.noProxy).toEqual(['localhost', '.corp.example', '10.0.0.1']);
    expect(p?.username).toBeUndefined();
    // curl reads a bare host:port as an http:// proxy.
    expect(resolveProxy(undefined, { httpsProxy: 'proxy.corp:3128' })?.url.href).toBe('http://proxy.corp:3128/');
  });

  it('lets the config win over the environment, field by field', () => {
    const env = { httpsProxy: 'http://env-proxy:3128', noProxy: 'env.example' };
    const both = resolveProxy({ url: 'http://cfg-proxy:8080', no_proxy: ['cfg.example'] }, env);
    expect(both?.url.host).toBe('cfg-proxy:8080');
    expect(both?.noProxy).toEqual(['cfg.example']);
    // No no_proxy in the config: the environment's applies.
    expect(resolveProxy({ url: 'http://cfg-proxy:8080' }, env)?.noProxy).toEqual(['env.example']);
    // An explicit empty list is a say too.
    expect(resolveProxy({ url: 'http://cfg-proxy:8080', no_proxy: [] }, env)?.noProxy).toEqual([]);
    // Credentials from the config apply to the environment's proxy.
    const creds = resolveProxy({ username: 'fort', password_file: passwordFile('p1', 's3cret\n') }, env);
    expect(creds).toMatchObject({ username: 'fort', password: 's3cret' });
    expect(creds?.url.host).toBe('env-proxy:3128');
  });

  it('reads the password from a 0600 file, trimmed', () => {
    const p = resolveProxy(
      { url: 'http://proxy:3128', username: 'fort', password_file: passwordFile('p2', '  pa:ss word \n') },
      {},
    );
    expect(p?.password).toBe('pa:ss word');
    expect(resolveProxy({ url: 'http://proxy:3128', username: 'fort' }, {})?.password).toBe('');
  });

  it('refuses a password file that group or others can read', () => {
    const file = passwordFile('p3', 's3cret', 0o644);
    const err = thrown(() => resolveProxy({ url: 'http://proxy:3128', username: 'fort', password_file: file }, {}));
    expect((err as FortError).code).toBe('FORT_ERR_SECRET_PERMISSIONS');
    expect(err.message).toBe(
      `proxy password file ${file} has mode 0644; it must not be readable by group or others (chmod 600 ${file})`,
    );
  });

  it('refuses an empty or missing password file', () => {
    expect(
      thrown(() =>
        resolveProxy({ url: 'http://proxy:3128', username: 'fort', password_file: passwordFile('p4', '\n') }, {}),
      ).message,
    ).toMatch(/password_file: .* is empty/);
    expect(
      thrown(() => resolveProxy({ url: 'http://proxy:3128', username: 'fort', password_file: join(dir, 'nope') }, {}))
        .message,
    ).toMatch(/cannot read proxy password file .*ENOENT/);
  });

  it('refuses credentials embedded in the proxy URL without repeating them', () => {
    const cfg = thrown(() => resolveProxy({ url: 'http://fort:hunter2@proxy:3128' }, {}));
    expect(cfg).toBeInstanceOf(ConfigError);
    expect(cfg.message).toBe(
      '[proxy]: url: credentials in the proxy URL are not accepted: set proxy.username and put the password in proxy.password_file (mode 0600)',
    );
    const env = thrown(() => resolveProxy(undefined, { httpsProxy: 'http://fort:hunter2@proxy:3128' }));
    expect(env).toBeInstanceOf(ConfigError);
    expect(env.message).toMatch(/^environment: HTTPS_PROXY: credentials in the proxy URL are not accepted/);
    expect(env.message).not.toContain('hunter2');
  });

  it('refuses proxy URLs it cannot use', () => {
    expect(thrown(() => resolveProxy(undefined, { httpsProxy: 'https://proxy:3128' })).message).toMatch(
      /https:\/\/ proxies are not supported/,
    );
    expect(thrown(() => resolveProxy({ url: 'http://proxy:3128/path' }, {})).message).toMatch(/no path/);
    expect(thrown(() => resolveProxy({ url: 'socks5://proxy:1080' }, {})).message).toMatch(
      /expected an http:\/\/ proxy URL/,
    );
    expect(thrown(() => resolveProxy({ username: 'fort' }, {})).message).toMatch(/no proxy URL/);
  });

  it('reads https_proxy / no_proxy from the environment, lower case first as curl does', () => {
    expect(readRuntimeEnv('X', { HTTPS_PROXY: 'http://upper:1', NO_PROXY: 'u' }).proxy).toEqual({
      httpsProxy: 'http://upper:1',
      noProxy: 'u',
    });
    expect(
      readRuntimeEnv('X', {
        HTTPS_PROXY: 'http://upper:1',
        https_proxy: 'http://lower:2',
        no_proxy: 'l',
        NO_PROXY: 'u',
      }).proxy,
    ).toEqual({ httpsProxy: 'http://lower:2', noProxy: 'l' });
    expect(readRuntimeEnv('X', {}).proxy).toEqual({ httpsProxy: undefined, noProxy: undefined });
  });
});

describe('bypassesProxy (curl NO_PROXY rules)', () => {
  const cases: [string, string[], boolean][] = [
    ['example.com', ['example.com'], true],
    ['api.example.com', ['example.com'], true],
    ['api.example.com', ['.example.com'], true],
    ['example.com', ['.example.com'], true],
    ['badexample.com', ['example.com'], false],
    ['badexample.com', ['.example.com'], false],
    ['api.example.com', ['*.example.com'], true],
    ['API.Example.COM', ['example.com'], true],
    ['example.com.', ['example.com'], true],
    ['example.com:8443', ['example.com'], true],
    ['example.com', ['example.com:443'], true],
    ['other.org', ['example.com', 'localhost'], false],
    ['anything.at.all', ['*'], true],
    ['10.0.0.1', ['*'], true],
    ['127.0.0.1', ['127.0.0.1'], true],
    ['127.0.0.1:8883', ['127.0.0.1'], true],
    ['127.0.0.12', ['127.0.0.1'], false],
    ['127.0.0.1', ['0.0.1'], false],
    ['127.0.0.1', ['.0.0.1'], false],
    ['[::1]:443', ['::1'], true],
    ['::1', ['[::1]'], true],
    ['10.1.2.3', ['10.0.0.0/8'], true],
    ['10.1.2.3:8443', ['192.168.0.0/16', '10.0.0.0/8'], true],
    ['11.0.0.1', ['10.0.0.0/8'], false],
    ['192.168.1.7', ['192.168.1.0/24'], true],
    ['192.168.2.7', ['192.168.1.0/24'], false],
    ['[fd00::5]:443', ['fd00::/8'], true],
    ['fe80::1', ['[fd00::]/8'], false],
    ['10.0.0.1', ['fd00::/8'], false],
    ['10.0.0.1', ['10.0.0.0/33'], false],
    ['intranet.example', ['10.0.0.0/8'], false],
    ['localhost', [], false],
    ['localhost', ['', ' '], false],
  ];
  for (const [host, list, expected] of cases) {
    it(`${host} with ${JSON.stringify(list)} → ${expected ? 'direct' : 'proxy'}`, () => {
      expect(bypassesProxy(host, list)).toBe(expected);
    });
  }
});

describe('proxyAgentFor', () => {
  const settings: ProxySettings = { url: new URL('http://127.0.0.1:3128'), noProxy: ['direct.example'] };

  it('gives a tunnelling https.Agent only when a proxy applies', () => {
    expect(proxyAgentFor(new URL('https://iot.example/mqtt'), undefined)).toBeUndefined();
    expect(proxyAgentFor(new URL('wss://direct.example/mqtt'), settings)).toBeUndefined();
    expect(proxyAgentFor(new URL('wss://iot.example/mqtt'), settings)).toBeInstanceOf(https.Agent);
    expect(
      proxyAgentFor(new URL('https://iot.example:8443/'), settings, { ca: 'x', cert: 'y', key: 'z' }),
    ).toBeInstanceOf(https.Agent);
    expect(() => proxyAgentFor(new URL('http://iot.example/'), settings)).toThrow(/only https: and wss:/);
  });

  it('keeps certificate verification on inside the tunnel', () => {
    const agent = proxyAgentFor(new URL('https://iot.example/'), settings, { ca: 'pinned' }) as https.Agent & {
      options: Record<string, unknown>;
    };
    expect(agent.options['rejectUnauthorized']).not.toBe(false);
    expect(agent.options['ca']).toBe('pinned');
    // Unset keys stay unset: they would override a CA the request itself carries.
    expect('cert' in agent.options).toBe(false);
  });

  it('says what a refused CONNECT means', () => {
    const proxy = new URL('http://127.0.0.1:3128');
    expect(describeProxyFailure(new Error('Bad response: 407'), proxy, 'iot.example:443').message).toBe(
      'proxy authentication required (407): proxy 127.0.0.1:3128 refused CONNECT iot.example:443 without valid credentials; check proxy.username and proxy.password_file',
    );
    expect(describeProxyFailure(new Error('Bad response: 401'), proxy, 'iot.example:443').message).toMatch(
      /^proxy authentication failed \(401\)/,
    );
    expect(describeProxyFailure(new Error('Bad response: 403'), proxy, 'iot.example:443').message).toBe(
      'proxy 127.0.0.1:3128 refused CONNECT iot.example:443 (403)',
    );
    const net = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3128'), { code: 'ECONNREFUSED' });
    expect(describeProxyFailure(net, proxy, 'iot.example:443').message).toBe(
      'proxy 127.0.0.1:3128: connect ECONNREFUSED 127.0.0.1:3128',
    );
  });
});
