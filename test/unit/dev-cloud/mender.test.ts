import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { loadDevCloudConfig } from '../../../dev-cloud/config.js';
import { ArtifactFormatError, readArtifactInfo } from '../../../dev-cloud/mender/artifact-info.js';
import type { ArtifactRecord, ArtifactStore } from '../../../dev-cloud/mender/artifacts.js';
import { AuthRequestError, parseAuthRequest } from '../../../dev-cloud/mender/auth-request.js';
import { createDeploymentBook } from '../../../dev-cloud/mender/deployments.js';
import { createDeviceRegistry } from '../../../dev-cloud/mender/devices.js';
import { parseRange } from '../../../dev-cloud/mender/download.js';
import { createDeviceTokens, createLinkSigner } from '../../../dev-cloud/mender/tokens.js';
import { formatDeployments } from '../../../dev-cloud/mender/format.js';
import { MenderOpError } from '../../../dev-cloud/mender/errors.js';
import { tempDir } from '../../helpers/fort.js';

const BASE = `[server]\nport = 8443\n[server.tls]\ncert = "c.pem"\nkey = "k.pem"\n`;

function loadConfig(toml: string) {
  const dir = tempDir('dcmender');
  const file = join(dir, 'dev-cloud.toml');
  writeFileSync(file, BASE + toml);
  return { dir, load: () => loadDevCloudConfig(file) };
}

/** A tar built in memory: [name, content] in order. */
async function tarOf(entries: [string, Buffer | string][]): Promise<Buffer> {
  const pack = tar.pack();
  for (const [name, content] of entries) pack.entry({ name }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function artifactFile(entries: [string, Buffer | string][]): Promise<string> {
  const file = join(tempDir('art'), 'a.mender');
  writeFileSync(file, await tarOf(entries));
  return file;
}

const VERSION = JSON.stringify({ format: 'mender', version: 3 });
const headerTarGz = async (info: unknown) => gzipSync(await tarOf([['header-info', JSON.stringify(info)]]));

/** An auth request body and its X-MEN-Signature, as a Mender client makes them. */
function signedAuth(
  key: { privateKey: KeyObject; publicKey: KeyObject },
  idData = '{"fort_id":"fort-1","mac":"00:11"}',
) {
  const raw = Buffer.from(
    JSON.stringify({
      id_data: idData,
      pubkey: key.publicKey.export({ type: 'spki', format: 'pem' }),
      tenant_token: '',
    }),
  );
  const type = key.privateKey.asymmetricKeyType;
  const sig = type === 'ed25519' ? sign(null, raw, key.privateKey) : sign('sha256', raw, key.privateKey);
  return { raw, sig: sig.toString('base64') };
}

describe('dev-cloud.toml [mender]', () => {
  it('is optional; defaults and paths relative to the config file', () => {
    expect(loadConfig('').load().mender).toBeUndefined();
    const { dir, load } = loadConfig('[mender]\nport = 9443\ndevice_ca = "pki/ca.pem"\nartifacts_dir = "artifacts"\n');
    expect(load().mender).toEqual({
      port: 9443,
      device_ca: join(dir, 'pki/ca.pem'),
      artifacts_dir: join(dir, 'artifacts'),
      download_link_seconds: 300,
      token_seconds: 3600,
      retry: { pending_seconds: 60, unavailable_seconds: 30 },
    });
  });

  it('names each bad field', () => {
    const { load } = loadConfig(
      '[mender]\nport = 0\ndevice_ca = "ca.pem"\nartifacts_dir = "a"\ndownload_link_seconds = 0\npublic_url = "https://x.test/"\n[mender.retry]\npending_seconds = -1\n',
    );
    expect(() => load()).toThrow(
      [
        'dev-cloud.toml: mender.port: expected integer 1..65535, got 0',
        'dev-cloud.toml: mender.public_url: expected an https URL without a trailing slash, got "https://x.test/"',
        'dev-cloud.toml: mender.download_link_seconds: expected integer 1..604800, got 0',
        'dev-cloud.toml: mender.retry.pending_seconds: expected integer 1..86400, got -1',
      ].join('\n'),
    );
  });
});

describe('artifact headers', () => {
  it('reads name and device types of an artifact written by the real mender-artifact', async () => {
    const dir = tempDir('mart');
    writeFileSync(join(dir, 'payload.bin'), 'agent release');
    const out = join(dir, 'out.mender');
    execFileSync('mender-artifact', [
      'write',
      'module-image',
      '-T',
      'fort-agent',
      '-n',
      'fort-1.0.1',
      '-t',
      'fort-test',
      '-t',
      'fort-other',
      '-f',
      join(dir, 'payload.bin'),
      '-o',
      out,
    ]);
    expect(await readArtifactInfo(out)).toEqual({
      name: 'fort-1.0.1',
      deviceTypes: ['fort-test', 'fort-other'],
      payloadTypes: ['fort-agent'],
      signed: false,
    });
  });

  it.each(['lzma', 'none'])('reads the header of a --compression %s artifact', async (compression) => {
    const dir = tempDir('mart');
    writeFileSync(join(dir, 'payload.bin'), 'agent release');
    const out = join(dir, 'out.mender');
    execFileSync('mender-artifact', [
      'write',
      'module-image',
      '-T',
      'fort-agent',
      '-n',
      `fort-${compression}`,
      '-t',
      'fort-test',
      '-f',
      join(dir, 'payload.bin'),
      '--compression',
      compression,
      '-o',
      out,
    ]);
    expect(await readArtifactInfo(out)).toEqual({
      name: `fort-${compression}`,
      deviceTypes: ['fort-test'],
      payloadTypes: ['fort-agent'],
      signed: false,
    });
  });

  it('reads a zstd-compressed header (header.tar.zst)', async () => {
    const info = {
      payloads: [{ type: 'fort-agent' }],
      artifact_provides: { artifact_name: 'fort-zst' },
      artifact_depends: { device_type: ['t'] },
    };
    const zst = execFileSync('zstd', ['-c'], { input: await tarOf([['header-info', JSON.stringify(info)]]) });
    expect(
      await readArtifactInfo(
        await artifactFile([
          ['version', VERSION],
          ['manifest', ''],
          ['header.tar.zst', zst],
        ]),
      ),
    ).toEqual({ name: 'fort-zst', deviceTypes: ['t'], payloadTypes: ['fort-agent'], signed: false });
    await expect(
      readArtifactInfo(
        await artifactFile([
          ['version', VERSION],
          ['header.tar.xz', 'not xz'],
        ]),
      ),
    ).rejects.toThrow(/cannot decompress the header with xz/);
  });

  it('notices manifest.sig, and refuses what is not a v3 artifact, saying why', async () => {
    const header = await headerTarGz({
      payloads: [{ type: 'x' }],
      artifact_provides: { artifact_name: 'a-1' },
      artifact_depends: { device_type: ['t'] },
    });
    const ok = await artifactFile([
      ['version', VERSION],
      ['manifest', ''],
      ['manifest.sig', 'c2ln'],
      ['header.tar.gz', header],
    ]);
    expect(await readArtifactInfo(ok)).toEqual({ name: 'a-1', deviceTypes: ['t'], payloadTypes: ['x'], signed: true });

    const cases: [[string, Buffer | string][], RegExp][] = [
      [
        [
          ['version', JSON.stringify({ format: 'mender', version: 2 })],
          ['header.tar.gz', header],
        ],
        /unsupported artifact version/,
      ],
      [
        [
          ['manifest', ''],
          ['version', VERSION],
        ],
        /the first entry is "manifest", not "version"/,
      ],
      [
        [
          ['version', VERSION],
          ['manifest', ''],
        ],
        /no header\.tar\[\.gz\|\.xz\|\.zst\]/,
      ],
      [
        [
          ['version', VERSION],
          ['header.tar.gz', await headerTarGz({ artifact_provides: {}, artifact_depends: { device_type: ['t'] } })],
        ],
        /no artifact_provides\.artifact_name/,
      ],
      [
        [
          ['version', VERSION],
          ['header.tar.gz', await headerTarGz({ artifact_provides: { artifact_name: 'a' } })],
        ],
        /no artifact_depends\.device_type/,
      ],
      [
        [
          ['version', VERSION],
          ['header.tar.gz', Buffer.from('not gzip')],
        ],
        /not a Mender artifact/,
      ],
    ];
    for (const [entries, why] of cases) {
      await expect(readArtifactInfo(await artifactFile(entries))).rejects.toThrow(why);
    }
    const junk = join(tempDir('art'), 'junk.mender');
    writeFileSync(junk, 'x'.repeat(2000));
    await expect(readArtifactInfo(junk)).rejects.toBeInstanceOf(ArtifactFormatError);
  });
});

describe('auth requests', () => {
  const keys = {
    rsa: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    ecdsa: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    ed25519: generateKeyPairSync('ed25519'),
  };

  it.each(Object.keys(keys) as (keyof typeof keys)[])('verifies a %s signature over the raw body bytes', (kind) => {
    const { raw, sig } = signedAuth(keys[kind]);
    const req = parseAuthRequest(raw, sig);
    expect(req.identity).toEqual({ fort_id: 'fort-1', mac: '00:11' });
    expect(req.keyFingerprint).toMatch(/^[0-9a-f]{64}$/);
    // The same JSON with other whitespace is other bytes: the signature no longer matches.
    const respaced = Buffer.from(raw.toString('utf8').replace(/,"/g, ', "'));
    expect(() => parseAuthRequest(respaced, sig)).toThrow(new AuthRequestError(401, 'signature verification failed'));
    // Another key's signature over the same bytes.
    const other = kind === 'rsa' ? keys.ecdsa : keys.rsa;
    const otherSig = sign('sha256', raw, other.privateKey).toString('base64');
    expect(() => parseAuthRequest(raw, otherSig)).toThrow('signature verification failed');
  });

  it('one identity whatever the key order of id_data', () => {
    const a = signedAuth(keys.ed25519, '{"mac":"00:11","fort_id":"fort-1"}');
    const b = signedAuth(keys.ed25519, '{"fort_id":"fort-1","mac":"00:11"}');
    expect(parseAuthRequest(a.raw, a.sig).identityKey).toBe(parseAuthRequest(b.raw, b.sig).identityKey);
  });

  it('400 for malformed requests and unsupported keys, 401 without a signature', () => {
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const cases: [Buffer, string | undefined, number, RegExp][] = [
      [Buffer.from('{'), 'x', 400, /not JSON/],
      [Buffer.from(JSON.stringify({ id_data: { a: 1 }, pubkey: 'x' })), 'x', 400, /id_data: expected a JSON string/],
      [
        Buffer.from(JSON.stringify({ id_data: '{}', pubkey: 'x' })),
        'x',
        400,
        /id_data: expected a non-empty JSON object/,
      ],
      [Buffer.from(JSON.stringify({ id_data: '{"a":"b"}', pubkey: 'nope' })), 'x', 400, /pubkey: not a PEM public key/],
      [signedAuth(p384).raw, signedAuth(p384).sig, 400, /unsupported key type ec \(secp384r1\)/],
      [signedAuth(keys.rsa).raw, undefined, 401, /missing X-MEN-Signature/],
    ];
    for (const [raw, sig, status, why] of cases) {
      let err: unknown;
      try {
        parseAuthRequest(raw, sig);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AuthRequestError);
      expect([(err as AuthRequestError).status, (err as Error).message]).toEqual([status, expect.stringMatching(why)]);
    }
  });
});

describe('device registry', () => {
  const ed = () => generateKeyPairSync('ed25519');
  const auth = (reg: ReturnType<typeof createDeviceRegistry>, key = ed(), idData = '{"fort_id":"fort-1"}') => {
    const { raw, sig } = signedAuth(key, idData);
    return reg.authenticate(parseAuthRequest(raw, sig));
  };

  it('pending first; accept takes the newest pending key, rejecting the previously accepted one', () => {
    let changes = 0;
    const reg = createDeviceRegistry({ now: () => new Date('2026-01-01T00:00:00Z'), changed: () => changes++ });
    const k1 = ed();
    const first = auth(reg, k1);
    expect([first.device.status, first.authSet.status]).toEqual(['pending', 'pending']);
    expect(auth(reg, k1).authSet.id).toBe(first.authSet.id);
    expect(reg.accept('fort-1').status).toBe('accepted');
    expect(reg.isAccepted(first.device.id, first.authSet.id)).toBe(true);
    // A new key for the same identity: same device, a new pending auth set.
    const second = auth(reg, ed());
    expect(second.device.id).toBe(first.device.id);
    expect(second.authSet.status).toBe('pending');
    reg.accept(first.device.id);
    expect([
      reg.isAccepted(first.device.id, first.authSet.id),
      reg.isAccepted(first.device.id, second.authSet.id),
    ]).toEqual([false, true]);
    reg.reject({ fort_id: 'fort-1' });
    expect(reg.get(first.device.id)!.status).toBe('rejected');
    expect(reg.isAccepted(first.device.id, second.authSet.id)).toBe(false);
    expect(reg.attempts().map((a) => a.result)).toEqual(['pending', 'pending', 'pending']);
    expect(changes).toBeGreaterThan(0);
  });

  it('finds a device by id or identity value; none → not_found, several → conflict', () => {
    const reg = createDeviceRegistry({ now: () => new Date(), changed: () => {} });
    auth(reg, ed(), '{"fort_id":"fort-1","site":"lab"}');
    auth(reg, ed(), '{"fort_id":"fort-2","site":"lab"}');
    expect(reg.find('fort-2').identity).toEqual({ fort_id: 'fort-2', site: 'lab' });
    expect(() => reg.find('fort-3')).toThrow(
      new MenderOpError('not_found', 'no device fort-3 (an id or an identity attribute value)'),
    );
    expect(() => reg.find('lab')).toThrow(/lab matches 2 devices/);
    expect(reg.find({ site: 'lab', fort_id: 'fort-1' }).identity['fort_id']).toBe('fort-1');
  });

  it('inventory: PATCH merges, PUT replaces', () => {
    const reg = createDeviceRegistry({ now: () => new Date(), changed: () => {} });
    const { device } = auth(reg);
    reg.setInventory(
      device.id,
      [
        { name: 'a', value: '1' },
        { name: 'b', value: 2 },
      ],
      'merge',
    );
    reg.setInventory(
      device.id,
      [
        { name: 'b', value: 3 },
        { name: 'c', value: ['x', 'y'] },
      ],
      'merge',
    );
    expect(reg.get(device.id)!.inventory).toEqual({ a: '1', b: 3, c: ['x', 'y'] });
    reg.setInventory(device.id, [{ name: 'd', value: 'only' }], 'replace');
    expect(reg.get(device.id)!.inventory).toEqual({ d: 'only' });
  });
});

describe('deployments', () => {
  const art = (id: string, name: string, deviceTypes: string[]): ArtifactRecord => ({
    id,
    name,
    deviceTypes,
    payloadTypes: ['fort-agent'],
    signed: false,
    size: 1,
    sha256: '',
    uploadedAt: '',
    file: '',
  });
  const store = (list: ArtifactRecord[]): ArtifactStore => ({
    add: () => Promise.reject(new Error('unused')),
    list: () => list,
    get: (id) => list.find((a) => a.id === id),
    findFor: (name, t) => list.find((a) => a.name === name && a.deviceTypes.includes(t)),
    byName: (name) => list.filter((a) => a.name === name),
  });
  let t = 0;
  const now = () => new Date(Date.UTC(2026, 0, 1, 0, 0, t++));

  it('next: the oldest unfinished deployment with an artifact for the device type; statuses recorded with time', () => {
    const book = createDeploymentBook({
      artifacts: store([art('a1', 'fort-1.0.1', ['fort-test']), art('a2', 'fort-1.0.2', ['other'])]),
      now,
      changed: () => {},
    });
    expect(() => book.create('fort-9', ['d1'])).toThrow(new MenderOpError('not_found', 'no artifact named fort-9'));
    const noFit = book.create('fort-1.0.2', ['d1']);
    const dep = book.create('fort-1.0.1', ['d1', 'd2']);
    expect(book.next('d3', 'fort-test')).toBeUndefined();
    const found = book.next('d1', 'fort-test')!;
    expect([found.deployment.id, found.artifact.id]).toEqual([dep.id, 'a1']);
    expect(book.get(noFit.id)!.devices[0]!.status).toBe('noartifact');
    // Served again until the device finishes it.
    expect(book.next('d1', 'fort-test')!.deployment.id).toBe(dep.id);
    for (const s of ['downloading', 'installing', 'rebooting', 'success'] as const) book.report(dep.id, 'd1', s, null);
    const d1 = book.get(dep.id)!.devices.find((x) => x.deviceId === 'd1')!;
    expect(d1.history.map((h) => h.status)).toEqual(['pending', 'downloading', 'installing', 'rebooting', 'success']);
    expect(new Set(d1.history.map((h) => h.at)).size).toBe(5);
    expect(d1.finishedAt).toBe(d1.history[4]!.at);
    expect(book.get(dep.id)!.status).toBe('inprogress');
    expect(book.next('d1', 'fort-test')).toBeUndefined();
    // A retried final report is fine; another status after the end is not.
    book.report(dep.id, 'd1', 'success', null);
    expect(() => book.report(dep.id, 'd1', 'failure', null)).toThrow(/already finished \(success\)/);
    expect(() => book.report(dep.id, 'd9', 'downloading', null)).toThrow(
      new MenderOpError('not_found', `no deployment ${dep.id} for this device`),
    );
    book.report(dep.id, 'd2', 'already-installed', null);
    expect(book.get(dep.id)!.status).toBe('finished');
    expect(() => book.abort(dep.id)).toThrow(/already finished/);
  });

  it('abort: unfinished devices become aborted and their next report is a conflict (409)', () => {
    const book = createDeploymentBook({
      artifacts: store([art('a1', 'fort-1.0.1', ['fort-test'])]),
      now,
      changed: () => {},
    });
    const dep = book.create('fort-1.0.1', ['d1']);
    book.report(dep.id, 'd1', 'downloading', null);
    book.storeLog(dep.id, 'd1', [{ timestamp: '2026-01-01T00:00:00Z', level: 'info', message: 'hello' }]);
    expect(book.abort(dep.id).devices[0]!.status).toBe('aborted');
    let err: unknown;
    try {
      book.report(dep.id, 'd1', 'installing', null);
    } catch (e) {
      err = e;
    }
    expect([(err as MenderOpError).kind, (err as Error).message]).toEqual([
      'conflict',
      `deployment ${dep.id} was aborted`,
    ]);
    expect(book.next('d1', 'fort-test')).toBeUndefined();
    const table = formatDeployments(book.list(), []).split('\n');
    expect(table[0]).toMatch(/^DEPLOYMENT\s+ARTIFACT\s+DEVICE\s+STATUS\s+SINCE\s+HISTORY$/);
    expect(table[1]!.split(/\s{2,}/)).toEqual([
      dep.id,
      'fort-1.0.1',
      'd1',
      'aborted',
      expect.any(String),
      'pending > downloading > aborted; log: 1 lines',
    ]);
  });
});

describe('download links and ranges', () => {
  it('parses single byte ranges; anything else is unsatisfiable', () => {
    expect(parseRange(undefined, 1000)).toBeUndefined();
    expect(parseRange('bytes=100-', 1000)).toEqual({ start: 100, end: 999 });
    expect(parseRange('bytes=100-199', 1000)).toEqual({ start: 100, end: 199 });
    expect(parseRange('bytes=900-5000', 1000)).toEqual({ start: 900, end: 999 });
    expect(parseRange('bytes=-10', 1000)).toEqual({ start: 990, end: 999 });
    expect(parseRange('bytes=-5000', 1000)).toEqual({ start: 0, end: 999 });
    for (const bad of ['bytes=1000-', 'bytes=5-2', 'bytes=-0', 'bytes=-', 'bytes=0-1,5-6', 'items=0-1', 'bytes=a-b']) {
      expect([bad, parseRange(bad, 1000)]).toEqual([bad, 'unsatisfiable']);
    }
  });

  it('a link is valid for its artifact until it expires', () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const signer = createLinkSigner({ baseUrl: () => 'https://127.0.0.1:9443', now: () => now });
    const link = signer.link('art-1', new Date('2026-01-01T00:05:00Z'));
    expect(link.expire).toBe('2026-01-01T00:05:00.000Z');
    const u = new URL(link.uri);
    expect(`${u.origin}${u.pathname}`).toBe('https://127.0.0.1:9443/download/art-1');
    const [expire, sig] = [u.searchParams.get('expire')!, u.searchParams.get('sig')!];
    expect(expire).toBe(String(Date.parse('2026-01-01T00:05:00Z') / 1000));
    expect(signer.check('art-1', expire, sig)).toBe('ok');
    expect(signer.check('art-2', expire, sig)).toBe('bad-signature');
    expect(signer.check('art-1', String(Number(expire) + 60), sig)).toBe('bad-signature');
    expect(signer.check('art-1', expire, undefined)).toBe('bad-signature');
    now = new Date('2026-01-01T00:05:00Z');
    expect(signer.check('art-1', expire, sig)).toBe('expired');
  });
});

describe('device tokens', () => {
  it('valid until exp, only ours, only HS256 with our key', async () => {
    let now = new Date('2026-01-01T00:00:00Z');
    const tokens = createDeviceTokens({ now: () => now, ttlSeconds: 3600 });
    const t = await tokens.issue({ deviceId: 'd1', authSetId: 's1' });
    expect(await tokens.verify(t)).toEqual({ deviceId: 'd1', authSetId: 's1' });
    const other = createDeviceTokens({ now: () => now, ttlSeconds: 3600 });
    expect(await tokens.verify(await other.issue({ deviceId: 'd1', authSetId: 's1' }))).toBeUndefined();
    const [h, p] = t.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    expect(await tokens.verify(none)).toBeUndefined();
    expect(await tokens.verify(`${h}.${p}.AAAA`)).toBeUndefined();
    now = new Date('2026-01-01T01:00:00Z');
    expect(await tokens.verify(t)).toBeUndefined();
  });
});
