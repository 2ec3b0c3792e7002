// reflect-metadata must be evaluated before @peculiar/x509 (its ASN.1 schemas use decorators).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** WebCrypto types from node (no DOM lib in this project). */
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export { x509, webcrypto };
