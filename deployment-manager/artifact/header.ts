import { gunzipSync } from 'node:zlib';
import { extract } from 'tar-stream';
import { z } from 'zod';
import { FortError } from '../../lib/errors.js';
import { messageOf, refuse } from './refusal.js';
import { bytesOf, noop } from './streams.js';

/** header.tar.gz: what the artifact is (name, device types, payload type), checked against this device. */

export const HEADER_ENTRY = 'header.tar.gz';
const UNPACKED_LIMIT = 1 << 20;
const TYPE_INFO = 'headers/0000/type-info';
const META_DATA = 'headers/0000/meta-data';

const headerInfoSchema = z.looseObject({
  payloads: z.array(z.looseObject({ type: z.string().nullable() })),
  artifact_provides: z.looseObject({ artifact_name: z.string().min(1) }),
  artifact_depends: z.looseObject({ device_type: z.array(z.string().min(1)).min(1) }),
});
const typeInfoSchema = z.looseObject({ type: z.string().nullable() });

export interface HeaderFacts {
  artifactName: string;
  deviceTypes: string[];
  payloadType: string;
  metaData?: Record<string, unknown>;
}

/** The entries of a small tar held in memory (header.tar.gz's inner tar). */
async function untarSmall(tarBytes: Buffer, what: string): Promise<Map<string, Buffer>> {
  const ex = extract();
  ex.on('error', noop);
  ex.end(tarBytes);
  const entries = new Map<string, Buffer>();
  try {
    for await (const entry of ex) {
      const { name, type } = entry.header;
      if (type !== 'file') throw refuse(`${what}: "${name}" is not a regular file`);
      if (entries.has(name)) throw refuse(`${what}: "${name}" appears twice`);
      const chunks: Uint8Array[] = [];
      for await (const c of bytesOf(entry)) chunks.push(c);
      entries.set(name, Buffer.concat(chunks));
    }
  } catch (err) {
    if (err instanceof FortError) throw err;
    throw refuse(`${what}: not a valid tar archive (${messageOf(err)})`, err);
  }
  return entries;
}

function parseJson<T>(raw: Buffer, schema: z.ZodType<T>, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    throw refuse(`${HEADER_ENTRY}: ${what} is not valid JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw refuse(`${HEADER_ENTRY}: ${what}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

/** Reads the (checksum-verified) header: one payload of `payloadType`, for this `deviceType`, no state scripts. */
export async function readHeader(
  compressed: Buffer,
  opts: { deviceType: string; payloadType: string },
): Promise<HeaderFacts> {
  let tarBytes: Buffer;
  try {
    tarBytes = gunzipSync(compressed, { maxOutputLength: UNPACKED_LIMIT });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      throw refuse(`${HEADER_ENTRY}: unpacks to more than ${UNPACKED_LIMIT} bytes`, err);
    throw refuse(`${HEADER_ENTRY}: gzip: ${messageOf(err)}`, err);
  }
  const entries = await untarSmall(tarBytes, HEADER_ENTRY);
  for (const name of entries.keys()) {
    if (name.startsWith('scripts/')) throw refuse(`${HEADER_ENTRY}: state scripts are not supported ("${name}")`);
    if (name !== 'header-info' && name !== TYPE_INFO && name !== META_DATA)
      throw refuse(`${HEADER_ENTRY}: unexpected entry "${name}"`);
  }
  const rawInfo = entries.get('header-info');
  if (!rawInfo) throw refuse(`${HEADER_ENTRY}: header-info is missing`);
  const info = parseJson(rawInfo, headerInfoSchema, 'header-info');
  if (info.payloads.length !== 1)
    throw refuse(`${HEADER_ENTRY}: expected exactly one payload, found ${info.payloads.length}`);
  const deviceTypes = info.artifact_depends.device_type;
  if (!deviceTypes.includes(opts.deviceType)) {
    throw refuse(
      `${HEADER_ENTRY}: device type ${JSON.stringify(opts.deviceType)} is not in artifact_depends.device_type ${JSON.stringify(deviceTypes)}`,
    );
  }
  const payloadType = info.payloads[0]?.type ?? null;
  if (payloadType !== opts.payloadType)
    throw refuse(
      `${HEADER_ENTRY}: payload type ${JSON.stringify(payloadType)} is not ${JSON.stringify(opts.payloadType)}`,
    );
  const rawTypeInfo = entries.get(TYPE_INFO);
  if (!rawTypeInfo) throw refuse(`${HEADER_ENTRY}: ${TYPE_INFO} is missing`);
  const typeInfo = parseJson(rawTypeInfo, typeInfoSchema, TYPE_INFO);
  if (typeInfo.type !== payloadType) {
    throw refuse(
      `${HEADER_ENTRY}: ${TYPE_INFO} type ${JSON.stringify(typeInfo.type)} does not match header-info payload type ${JSON.stringify(payloadType)}`,
    );
  }
  const rawMeta = entries.get(META_DATA);
  const facts: HeaderFacts = { artifactName: info.artifact_provides.artifact_name, deviceTypes, payloadType };
  if (rawMeta && rawMeta.length > 0) facts.metaData = parseJson(rawMeta, z.record(z.string(), z.unknown()), META_DATA);
  return facts;
}
