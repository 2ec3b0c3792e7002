import { describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pino } from 'pino';
import { loadPublicKeyFile } from '../../../../deployment-manager/artifact/keys.js';
import { currentRelease, switchCurrent } from '../../../../deployment-manager/install/current.js';
import {
  selfUpdatePaths,
  type SelfUpdateProof,
  type SelfUpdateRequest,
  type SelfUpdateStatus,
} from '../../../../deployment-manager/self-update/contract.js';
import { runRootSelfUpdate, type RootSelfUpdateDeps } from '../../../../deployment-manager/self-update/root-install.js';
import { tempDir } from '../../../helpers/fort.js';
import { buildArtifact, flipByte, rsaKeyPair, writeTar } from '../../../helpers/mender.js';

const log = pino({ level: 'silent' });
const uid = process.getuid!();

/** A release tarball as `npm run release` lays it out, small: package.json and the two entry points. */
async function releaseTarball(dir: string, version: string, withDm = true): Promise<string> {
  const file = join(dir, `fort-${version}.tgz`);
  const entries = [
    { name: './package.json', data: Buffer.from(JSON.stringify({ name: 'fort', version })) },
    { name: './dist/agent/main.js', data: Buffer.from('// agent\n') },
    ...(withDm ? [{ name: './dist/deployment-manager/main.js', data: Buffer.from(`// dm ${version}\n`) }] : []),
  ];
  writeFileSync(file, gzipSync(await writeTar(entries)));
  return file;
}

/**
 * Root's side of a self-update against a real signed artifact (Debian's mender-artifact), real
 * files and links in a temp install root; systemd's restart is recorded. The deployment manager
 * under trial is played by the test writing (or not) its proof.
 */
async function world(o: { proofMs?: number } = {}) {
  const dir = tempDir('root-self-update');
  const signing = rsaKeyPair(dir, 'signing');
  const installRoot = join(dir, 'opt-dm');
  mkdirSync(join(installRoot, 'releases', '1.0.0', 'dist/deployment-manager'), { recursive: true });
  switchCurrent(installRoot, '1.0.0');
  switchCurrent(installRoot, '1.0.0', 'stable');
  const requestDir = join(dir, 'dm-state', 'self-update');
  mkdirSync(requestDir, { recursive: true });
  const paths = selfUpdatePaths({ request_dir: requestDir, root_state_dir: join(dir, 'root-state') });
  const restarts: string[] = [];
  const artifact = async (version: string, opts: { withDm?: boolean; signed?: boolean } = {}) =>
    buildArtifact({
      dir,
      name: `fort-${version}`,
      deviceType: 'fort',
      payloadFile: await releaseTarball(dir, version, opts.withDm ?? true),
      ...(opts.signed === false ? {} : { sign: { key: signing.private } }),
      out: join(requestDir, `${version}-${Math.random()}.mender`),
    });
  const request = (file: string, version = '1.0.1') => {
    const r: SelfUpdateRequest = { deploymentId: 'd1', artifact: file, version, requestedAt: new Date().toISOString() };
    writeFileSync(paths.request, JSON.stringify(r));
  };
  const prove = (version = '1.0.1') => {
    const p: SelfUpdateProof = { deploymentId: 'd1', version, pid: 1, at: new Date().toISOString() };
    writeFileSync(paths.proof, JSON.stringify(p));
  };
  const status = () => JSON.parse(readFileSync(paths.status, 'utf8')) as SelfUpdateStatus;
  const deps = (extra: Partial<RootSelfUpdateDeps> = {}): RootSelfUpdateDeps => ({
    paths,
    installRoot,
    workDir: join(dir, 'root-state'),
    dmUid: uid,
    keys: loadPublicKeyFile(signing.public),
    deviceType: 'fort',
    allowUnsigned: false,
    maxArtifactBytes: 64 * 1024 * 1024,
    proofMs: o.proofMs ?? 10_000,
    pollMs: 10,
    restartUnit: async () => void restarts.push(currentRelease(installRoot)!),
    log,
    ...extra,
  });
  const releases = () => readdirSync(join(installRoot, 'releases')).sort();
  return { dir, installRoot, paths, restarts, artifact, request, prove, status, deps, releases };
}

describe("root's self-update of the deployment manager", () => {
  it('verifies, installs beside the old one, switches, restarts, and commits it as stable once it proves itself', async () => {
    const w = await world();
    w.request(await w.artifact('1.0.1'));
    // The new deployment manager proves itself once the unit is restarted on it.
    const run = runRootSelfUpdate(
      w.deps({
        restartUnit: async () => {
          w.restarts.push(currentRelease(w.installRoot)!);
          setTimeout(() => w.prove(), 50);
        },
      }),
    );
    expect(await run).toBe('committed');
    expect(w.restarts).toEqual(['1.0.1']);
    expect(currentRelease(w.installRoot)).toBe('1.0.1');
    expect(currentRelease(w.installRoot, 'stable')).toBe('1.0.1');
    expect(w.status()).toMatchObject({ deploymentId: 'd1', step: 'committed', target: '1.0.1', previous: '1.0.0' });
    expect(w.releases()).toEqual(['1.0.0', '1.0.1']);
    expect(readFileSync(join(w.installRoot, 'releases/1.0.1/dist/deployment-manager/main.js'), 'utf8')).toBe(
      '// dm 1.0.1\n',
    );
    expect(existsSync(w.paths.request)).toBe(false);
    expect(existsSync(w.paths.active)).toBe(false);
  });

  it('no proof before the deadline (exits at start, hangs before ready): the previous one is current again and restarted', async () => {
    const w = await world({ proofMs: 300 });
    w.request(await w.artifact('1.0.1'));
    expect(await runRootSelfUpdate(w.deps())).toBe('rolled_back');
    expect(w.restarts).toEqual(['1.0.1', '1.0.0']);
    expect(currentRelease(w.installRoot)).toBe('1.0.0');
    expect(currentRelease(w.installRoot, 'stable')).toBe('1.0.0');
    expect(w.status()).toMatchObject({ step: 'rolled_back', reason: expect.stringMatching(/within 0\.3 s/) });
    expect(w.releases()).toEqual(['1.0.0']);
    expect(existsSync(w.paths.active)).toBe(false);
  });

  it('a proof of another version or deployment does not count', async () => {
    const w = await world({ proofMs: 300 });
    w.request(await w.artifact('1.0.1'));
    w.prove('1.0.0');
    expect(await runRootSelfUpdate(w.deps())).toBe('rolled_back');
  });

  it('refuses before installing anything: tampered, unsigned, another version, no deployment manager inside', async () => {
    const cases: [string, (w: Awaited<ReturnType<typeof world>>) => Promise<void>, RegExp][] = [
      [
        'tampered',
        async (w) => {
          const f = await w.artifact('1.0.1');
          writeFileSync(f, flipByte(readFileSync(f), readFileSync(f).length - 2000));
          w.request(f);
        },
        /./,
      ],
      ['unsigned', async (w) => w.request(await w.artifact('1.0.1', { signed: false })), /signature|signed/i],
      [
        'another version',
        async (w) => w.request(await w.artifact('1.0.2'), '1.0.1'),
        /holds release 1\.0\.2, not 1\.0\.1/,
      ],
      [
        'no deployment manager',
        async (w) => w.request(await w.artifact('1.0.1', { withDm: false })),
        /without dist\/deployment-manager\/main\.js/,
      ],
    ];
    for (const [what, setUp, reason] of cases) {
      const w = await world();
      await setUp(w);
      expect(await runRootSelfUpdate(w.deps()), what).toBe('refused');
      expect(w.status().reason, what).toMatch(reason);
      expect(w.releases(), what).toEqual(['1.0.0']);
      expect(currentRelease(w.installRoot), what).toBe('1.0.0');
      expect(w.restarts, what).toEqual([]);
    }
  });

  it('reads nothing through a link the deployment manager planted, nor a file of another user', async () => {
    const w = await world();
    const secret = join(w.dir, 'root-secret.json');
    writeFileSync(secret, JSON.stringify({ deploymentId: 'd1', artifact: '/x', version: '1.0.1', requestedAt: 'x' }));
    symlinkSync(secret, w.paths.request);
    expect(await runRootSelfUpdate(w.deps())).toBe('nothing');
    // The artifact: a link to it is refused, and so is a file another uid owns.
    const real = await w.artifact('1.0.1');
    const link = join(w.dir, 'dm-state', 'link.mender');
    symlinkSync(real, link);
    w.request(link);
    expect(await runRootSelfUpdate(w.deps())).toBe('refused');
    expect(w.status().reason).toMatch(/cannot open the artifact .*ELOOP/);
    w.request(real);
    expect(await runRootSelfUpdate(w.deps({ dmUid: uid + 1 }))).toBe('nothing');
    expect(w.releases()).toEqual(['1.0.0']);
  });

  it('carries on after a crash: a status left at proving switches (again) and guards to the same deadline', async () => {
    const w = await world();
    w.request(await w.artifact('1.0.1'));
    // A run that dies right after persisting `proving` (its restart throws, as a kill would end it).
    await expect(
      runRootSelfUpdate(
        w.deps({
          restartUnit: async () => {
            throw new Error('killed');
          },
        }),
      ),
    ).rejects.toThrow('killed');
    expect(w.status().step).toBe('proving');
    expect(existsSync(w.paths.active)).toBe(true);
    // The path unit starts it again on `active`; the current link is put back to the state of a half switch.
    switchCurrent(w.installRoot, '1.0.0');
    const again = runRootSelfUpdate(
      w.deps({
        restartUnit: async () => {
          w.restarts.push(currentRelease(w.installRoot)!);
          setTimeout(() => w.prove(), 20);
        },
      }),
    );
    expect(await again).toBe('committed');
    expect(w.restarts).toEqual(['1.0.1']);
    expect(currentRelease(w.installRoot, 'stable')).toBe('1.0.1');
  });
});
