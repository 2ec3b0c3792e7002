import { constants as cryptoConstants, verify as verifySignatureBytes } from 'node:crypto';
import type { ArtifactPublicKey } from './keys.js';
import { refuse } from './refusal.js';

function signatureVerifies(key: ArtifactPublicKey, data: Buffer, sig: Buffer): boolean {
  try {
    switch (key.type) {
      case 'rsa':
        return verifySignatureBytes('sha256', data, { key: key.key, padding: cryptoConstants.RSA_PKCS1_PADDING }, sig);
      case 'ecdsa':
        // mender-artifact writes raw r||s (64 bytes); other signers write DER.
        return (
          (sig.length === 64 &&
            verifySignatureBytes('sha256', data, { key: key.key, dsaEncoding: 'ieee-p1363' }, sig)) ||
          verifySignatureBytes('sha256', data, { key: key.key, dsaEncoding: 'der' }, sig)
        );
      case 'ed25519':
        return verifySignatureBytes(null, data, key.key, sig);
    }
  } catch {
    return false;
  }
}

/** `manifest.sig` (base64) over the manifest's bytes: returns the configured key that verifies it. */
export function verifyManifestSignature(
  manifest: Buffer,
  sigFile: Buffer,
  keys: readonly ArtifactPublicKey[],
): ArtifactPublicKey {
  if (keys.length === 0) throw refuse('manifest.sig: the artifact is signed but no public key is configured');
  const text = sigFile.toString('latin1').trim();
  if (text === '' || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text))
    throw refuse('manifest.sig: not valid base64');
  const sig = Buffer.from(text, 'base64');
  const key = keys.find((k) => signatureVerifies(k, manifest, sig));
  if (key) return key;
  throw refuse(
    keys.length === 1
      ? 'manifest.sig: signature does not verify with the configured key'
      : `manifest.sig: signature does not verify with any of the ${keys.length} configured keys`,
  );
}
