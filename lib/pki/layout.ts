import { resolve, join } from 'node:path';

/** The directory layout written by `generatePki` and read by the dev stack and tests. */
export function pkiPaths(out: string) {
  const root = resolve(out);
  const zone = (dir: string) => (file: string) => join(root, dir, file);
  const tz = zone('trust-zone');
  const cz = zone('client-zone');
  const cs = zone('cloud-server');
  const cd = zone('cloud-device');
  const jwt = zone('jwt');
  return {
    root,
    trustZone: {
      dir: join(root, 'trust-zone'),
      ca: tz('ca.pem'),
      caKey: tz('ca.key'),
      agentCert: tz('agent.pem'),
      agentKey: tz('agent.key'),
      deploymentManagerCert: tz('deployment-manager.pem'),
      deploymentManagerKey: tz('deployment-manager.key'),
      fortctlCert: tz('fortctl.pem'),
      fortctlKey: tz('fortctl.key'),
      engineCert: tz('engine.pem'),
      engineKey: tz('engine.key'),
    },
    clientZone: {
      dir: join(root, 'client-zone'),
      ca: cz('ca.pem'),
      caKey: cz('ca.key'),
      clientApiCert: cz('client-api.pem'),
      clientApiKey: cz('client-api.key'),
    },
    cloudServer: {
      dir: join(root, 'cloud-server'),
      ca: cs('ca.pem'),
      caKey: cs('ca.key'),
      devCloudCert: cs('dev-cloud.pem'),
      devCloudKey: cs('dev-cloud.key'),
    },
    cloudDevice: {
      dir: join(root, 'cloud-device'),
      ca: cd('ca.pem'),
      caKey: cd('ca.key'),
      deviceCert: cd('device.pem'),
      deviceKey: cd('device.key'),
    },
    jwt: {
      dir: join(root, 'jwt'),
      privateKey: jwt('fort-jwt.key'),
      publicKey: jwt('fort-jwt.pub.pem'),
    },
  };
}

export type PkiPaths = ReturnType<typeof pkiPaths>;
export type PkiZone = Exclude<keyof PkiPaths, 'root'>;
export const PKI_ZONES: readonly PkiZone[] = ['trustZone', 'clientZone', 'cloudServer', 'cloudDevice', 'jwt'];

/** Every file of the layout, or of some zones (not the directories). */
export function pkiFiles(paths: PkiPaths, zones: readonly PkiZone[] = PKI_ZONES): string[] {
  return zones.flatMap((z) =>
    Object.entries(paths[z])
      .filter(([k]) => k !== 'dir')
      .map(([, v]) => v),
  );
}
