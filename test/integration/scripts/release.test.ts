import { describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { unpackRelease } from '../../../deployment-manager/install/unpack.js';
import { DIST, tempDir } from '../../helpers/fort.js';

const run = promisify(execFile);

describe('npm run release', () => {
  it('builds the agent release tarball and a Mender artifact the real tool validates with the signing key', async () => {
    const dir = tempDir('release');
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(dir, 'k.pem'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', join(dir, 'k.pem'), '-pubout', '-out', join(dir, 'pub.pem')], { stdio: 'ignore' });
    const { stdout } = await run(process.execPath, [join(DIST, 'scripts/release.js'), '--version', '1.0.1', '--device-type', 'fort-test', '--key', join(dir, 'k.pem'), '--out', join(dir, 'out'), '--no-node-modules']);
    expect(stdout).toBe(`release 1.0.1: ${join(dir, 'out', 'fort-agent-1.0.1.tgz')}\nartifact fort-1.0.1: ${join(dir, 'out', 'fort-1.0.1.mender')} (signed)\n`);
    const artifact = join(dir, 'out', 'fort-1.0.1.mender');
    expect((await run('mender-artifact', ['validate', '-k', join(dir, 'pub.pem'), artifact])).stdout).toContain('validated successfully');
    const read = (await run('mender-artifact', ['read', artifact])).stdout;
    expect(read).toMatch(/Name: fort-1\.0\.1/);
    expect(read).toContain("Compatible devices: '[fort-test]'");
    expect(read).toMatch(/Type: +fort-agent/);
    // The tarball is a release the deployment manager unpacks as 1.0.1.
    const unpacked = await unpackRelease(createReadStream(join(dir, 'out', 'fort-agent-1.0.1.tgz')), join(dir, 'releases'), { maxBytes: 200 * 1024 * 1024, maxEntries: 100_000 });
    expect(unpacked.version).toBe('1.0.1');
    // A different key does not validate it.
    execFileSync('openssl', ['genrsa', '-traditional', '-out', join(dir, 'k2.pem'), '2048'], { stdio: 'ignore' });
    execFileSync('openssl', ['rsa', '-in', join(dir, 'k2.pem'), '-pubout', '-out', join(dir, 'pub2.pem')], { stdio: 'ignore' });
    await expect(run('mender-artifact', ['validate', '-k', join(dir, 'pub2.pem'), artifact])).rejects.toMatchObject({ stderr: expect.stringContaining('verification error') });
  });

  it('refuses a version that is not semver', async () => {
    await expect(run(process.execPath, [join(DIST, 'scripts/release.js'), '--version', 'latest', '--device-type', 't', '--out', tempDir('release'), '--no-node-modules'])).rejects.toMatchObject({
      code: 1,
      stderr: 'release: --version: expected a semantic version like 1.2.3, got "latest"\n',
    });
  });
});
