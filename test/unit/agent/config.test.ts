import { describe, expect, it, beforeAll } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAgentConfig } from '../../../agent/config.js';
import { loadDeploymentManagerConfig } from '../../../deployment-manager/config.js';
import { ConfigError } from '../../../lib/errors.js';
import { tempDir } from '../../helpers/fort.js';
import { MALFORMED, VALID } from '../../helpers/agent-configs.js';

describe('agent config', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('config');
  });

  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('loads a valid file, applies defaults and resolves paths against the file', () => {
    const config = loadAgentConfig(write('agent.toml', VALID));
    expect(config.fort.id).toBe('fort-1');
    expect(config.store.path).toBe(join(dir, 'data/agent.db'));
    expect(config.admin.tls.key).toBe(join(dir, 'pki/agent.key'));
    expect(config.admin.host).toBe('127.0.0.1');
    expect(config.admin.allowed_clients).toEqual(['fortctl', 'deployment-manager']);
    expect(config.log.level).toBe('info');
    expect(config.lifecycle.stop_timeout_seconds).toBe(10);
  });

  for (const c of MALFORMED.filter((m) => m.problems.length > 0)) {
    it(`reports ${c.name} with file, field and reason`, () => {
      const file = write('agent.toml', c.toml);
      let error: unknown;
      try {
        loadAgentConfig(file);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual(c.problems);
      expect((error as ConfigError).message).toBe(c.problems.map((p) => `agent.toml: ${p}`).join('\n'));
    });
  }

  it('reports TOML syntax errors with line and column', () => {
    const file = write('agent.toml', VALID.replace('port = 8443', 'port = = 8443'));
    expect(() => loadAgentConfig(file)).toThrow(
      'agent.toml: line 13, column 8: invalid TOML: Invalid TOML document: invalid value',
    );
  });

  it('reports every problem at once', () => {
    const file = write('agent.toml', VALID.replace('port = 8443', 'port = 0').replace('id = "fort-1"', 'id = ""'));
    try {
      loadAgentConfig(file);
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toHaveLength(2);
    }
  });

  it('reports a missing file', () => {
    expect(() => loadAgentConfig(join(dir, 'nope.toml'))).toThrow('nope.toml: cannot read');
  });

  it('reads [proxy] and resolves the password file against the config file', () => {
    const config = loadAgentConfig(
      write(
        'agent.toml',
        `${VALID}
[proxy]
url = "http://proxy.corp.example:3128"
no_proxy = ["localhost", ".corp.example"]
username = "fort"
password_file = "secrets/proxy-password"
`,
      ),
    );
    expect(config.proxy).toEqual({
      url: 'http://proxy.corp.example:3128',
      no_proxy: ['localhost', '.corp.example'],
      username: 'fort',
      password_file: join(dir, 'secrets/proxy-password'),
    });
    expect(loadAgentConfig(write('agent.toml', VALID)).proxy).toBeUndefined();
  });

  it('refuses proxy credentials in the URL without echoing them, and a password file without a user', () => {
    const withPassword = write('agent.toml', `${VALID}\n[proxy]\nurl = "http://fort:hunter2@proxy:3128"\n`);
    expect(() => loadAgentConfig(withPassword)).toThrow(
      /^agent\.toml: proxy\.url: credentials in the proxy URL are not accepted: set proxy\.username and put the password in proxy\.password_file \(mode 0600\)$/,
    );
    const orphan = write('agent.toml', `${VALID}\n[proxy]\nurl = "https://proxy:3128"\npassword_file = "pw"\n`);
    expect(() => loadAgentConfig(orphan)).toThrow(/^agent\.toml: proxy\.url: https:\/\/ proxies are not supported/);
    const noUser = write('agent.toml', `${VALID}\n[proxy]\nurl = "http://proxy:3128"\npassword_file = "pw"\n`);
    expect(() => loadAgentConfig(noUser)).toThrow(
      'agent.toml: proxy.password_file: needs proxy.username (the user the password belongs to), got "pw"',
    );
  });

  it('validates the deployment manager config with the same rules', () => {
    const file = write(
      'deployment-manager.toml',
      `
[state]
path = "state.json"
[agent]
admin_url = "http://127.0.0.1:8444"
health_interval_seconds = 0
[agent.tls]
ca = "ca.pem"
cert = "dm.pem"
key = "dm.key"
`,
    );
    expect(() => loadDeploymentManagerConfig(file)).toThrow(
      'deployment-manager.toml: agent.admin_url: expected an https:// URL, got "http://127.0.0.1:8444"\n' +
        'deployment-manager.toml: agent.health_interval_seconds: expected integer 1..3600, got 0',
    );
  });
});
