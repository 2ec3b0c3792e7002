import { describe, expect, it } from 'vitest';
import { namesToResolve } from '../../../../fortctl/doctor/dns.js';

describe('doctor namesToResolve', () => {
  const proxy = { url: new URL('http://proxy.corp:3128'), noProxy: ['.internal'] };

  it('skips IP addresses and groups the endpoints of one name', () => {
    const names = namesToResolve([
      { name: 'IoT endpoint', url: new URL('https://127.0.0.1:8443/mqtt') },
      { name: 'cloud API', url: new URL('https://[::1]:8443') },
      { name: 'credentials provider', url: new URL('https://cloud.example.com') },
      { name: 'update server', url: new URL('https://cloud.example.com:8444') },
    ]);
    expect([...names]).toEqual([['cloud.example.com', ['credentials provider', 'update server']]]);
  });

  it('resolves the proxy instead of a tunnelled endpoint (the proxy resolves that), unless NO_PROXY exempts it', () => {
    const names = namesToResolve([
      { name: 'cloud API', url: new URL('https://cloud.example.com'), proxy },
      { name: 'update server', url: new URL('https://updates.internal'), proxy },
    ]);
    expect([...names]).toEqual([
      ['proxy.corp', ['proxy of cloud API']],
      ['updates.internal', ['update server']],
    ]);
  });
});
