import { createReadStream, statSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT, FortError } from '../../lib/errors.js';
import { loadPublicKeyFile, type ArtifactPublicKey } from './keys.js';
import { DEFAULT_PAYLOAD_TYPE, verifyArtifact, type VerifiedArtifact } from './reader.js';

/** Where a command writes; tests pass their own. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  exitCode(code: number): void;
}

export const processIo: CliIo = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  exitCode: (c) => {
    process.exitCode = c;
  },
};

/** Exit codes of verify-artifact (the shared map): 0 valid, 1 refused (the reason is printed), 2 could not check. */
export const VERIFY_EXIT = { OK: EXIT.OK, REFUSED: EXIT.FAILED, CANNOT_CHECK: EXIT.UNREACHABLE } as const;

const DEFAULT_MAX_MB = 512;

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

interface VerifyArtifactFlags {
  key?: string[];
  deviceType: string;
  allowUnsigned?: boolean;
  payloadType: string;
  maxMb: number;
  json?: boolean;
}

function summary(file: string, a: VerifiedArtifact): string {
  const width = Math.max(...a.files.map((f) => f.name.length));
  return [
    `${file}: valid`,
    `  artifact      ${a.artifactName}`,
    `  device types  ${a.deviceTypes.join(', ')}`,
    `  payload       ${a.payloadType} (${a.files.length} file${a.files.length === 1 ? '' : 's'})`,
    ...a.files.map((f) => `    ${f.name.padEnd(width)}  ${String(f.size).padStart(12)} bytes  sha256 ${f.sha256}`),
    `  signature     ${a.signed ? `${a.keyType} signature verified with ${a.keySource}` : 'none (unsigned artifacts allowed)'}`,
    '',
  ].join('\n');
}

/**
 * `verify-artifact <file>`: run every check of an installation on a Mender artifact, install
 * nothing. Payload bytes are hashed and dropped.
 */
export function verifyArtifactCommand(program: Command, io: CliIo = processIo): Command {
  return program
    .command('verify-artifact <file>')
    .description('check a Mender artifact (signature, checksums, device type, payload type) without installing it')
    .option(
      '-k, --key <pub.pem>',
      'public key (PEM) that may have signed the artifact; repeatable',
      (v: string, acc: string[] | undefined) => [...(acc ?? []), v],
    )
    .requiredOption('-t, --device-type <type>', "this device's type (must be in the artifact's device types)")
    .option('--allow-unsigned', 'accept an artifact without manifest.sig (a signature present is still verified)')
    .option('--payload-type <type>', 'payload type (update module) accepted', DEFAULT_PAYLOAD_TYPE)
    .addOption(
      new Option('--max-mb <n>', 'refuse artifacts larger than this many MiB')
        .argParser(positiveInt)
        .default(DEFAULT_MAX_MB),
    )
    .option('--json', 'print the result as JSON')
    .action(async (file: string, o: VerifyArtifactFlags) => {
      /** `problem` starts with what it is about: the artifact or a key file. */
      const cannotCheck = (problem: string) => {
        io.stderr(`verify-artifact: ${problem}\n`);
        if (o.json) io.stdout(`${JSON.stringify({ file, valid: false, checked: false, reason: problem }, null, 2)}\n`);
        io.exitCode(VERIFY_EXIT.CANNOT_CHECK);
      };
      let keys: ArtifactPublicKey[];
      try {
        keys = (o.key ?? []).flatMap((k) => loadPublicKeyFile(k));
      } catch (err) {
        return cannotCheck(err instanceof Error ? err.message : String(err)); // names the key file
      }
      if (keys.length === 0 && !o.allowUnsigned)
        return cannotCheck(`${file}: no --key given (give the signing public key, or --allow-unsigned)`);
      try {
        if (!statSync(file).isFile()) return cannotCheck(`${file}: not a regular file`);
      } catch (err) {
        return cannotCheck(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }

      try {
        const result = await verifyArtifact(createReadStream(file), {
          keys,
          deviceType: o.deviceType,
          payloadType: o.payloadType,
          allowUnsigned: o.allowUnsigned ?? false,
          maxBytes: o.maxMb * 1024 * 1024,
        });
        io.stdout(o.json ? `${JSON.stringify({ file, valid: true, ...result }, null, 2)}\n` : summary(file, result));
        io.exitCode(VERIFY_EXIT.OK);
      } catch (err) {
        if (!(err instanceof FortError && err.code === 'FORT_ERR_ARTIFACT'))
          return cannotCheck(`${file}: ${err instanceof Error ? err.message : String(err)}`);
        io.stderr(`verify-artifact: ${file}: ${err.message}\n`);
        if (o.json)
          io.stdout(`${JSON.stringify({ file, valid: false, checked: true, reason: err.message }, null, 2)}\n`);
        io.exitCode(VERIFY_EXIT.REFUSED);
      }
    });
}
