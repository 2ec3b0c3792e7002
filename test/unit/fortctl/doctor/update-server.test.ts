import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { updateServer } from '../../../../fortctl/doctor/update-server.js';
import type { DeploymentManagerConfigView } from '../../../../lib/config/views.js';

describe('doctor updateServer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fort-doctor-dm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const paired = (identityDir: string) =>
    ({ updates: { paired: { identity_dir: identityDir } } }) as unknown as DeploymentManagerConfigView;

  it('takes [updates.server] as configured', () => {
    const dm = {
      updates: {
        server: { url: 'https://updates.example.com', tls: { ca: '/ca', cert: '/c', key: '/k' }, auth_key: '/auth' },
      },
    } as unknown as DeploymentManagerConfigView;
    expect(updateServer(dm)).toEqual({
      url: 'https://updates.example.com',
      tls: { ca: '/ca', cert: '/c', key: '/k' },
      authKey: '/auth',
    });
    expect(updateServer({} as DeploymentManagerConfigView)).toBeUndefined();
  });

  it("takes a paired fort's from the update identity the deployment manager obtained, and warns while there is none", () => {
    const id = join(dir, 'update-identity');
    expect(updateServer(paired(id))).toMatchObject({
      name: 'update server',
      level: 'warn',
      detail: expect.stringMatching(/^no update identity in .* yet/),
    });
    mkdirSync(id);
    writeFileSync(
      join(id, 'identity.json'),
      JSON.stringify({
        fort_id: 'fort-1',
        update_url: 'https://mender.example.com',
        obtained_at: '2026-01-01T00:00:00Z',
      }),
    );
    expect(updateServer(paired(id))).toEqual({
      url: 'https://mender.example.com',
      tls: { ca: join(id, 'server-ca.pem'), cert: join(id, 'device.pem'), key: join(id, 'device.key') },
      authKey: join(id, 'mender-auth.pem'),
    });
    writeFileSync(join(id, 'identity.json'), '{');
    expect(updateServer(paired(id))).toMatchObject({ level: 'fail', detail: expect.stringMatching(/is unreadable: /) });
  });
});
