import { describe, expect, it } from 'vitest';
import { cloudEndpoint } from '../../../../agent/cloud/config.js';

describe('cloudEndpoint', () => {
  it('keeps the base path, with or without a trailing slash', () => {
    expect(cloudEndpoint('https://c.example', 'oauth/token').href).toBe('https://c.example/oauth/token');
    expect(cloudEndpoint('https://c.example:8443/', 'api/v1/authorize').href).toBe(
      'https://c.example:8443/api/v1/authorize',
    );
    expect(cloudEndpoint('https://c.example/t1', '.well-known/jwks.json').href).toBe(
      'https://c.example/t1/.well-known/jwks.json',
    );
  });
});
