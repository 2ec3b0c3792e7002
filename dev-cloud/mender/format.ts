import type { DeploymentRecord } from './deployments.js';
import type { DeviceRecord } from './devices.js';
import type { ArtifactView } from './dev-routes.js';

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[head, ...rows].map(line).join('\n')}\n`;
}

/** `fort_id` (or else the first identity attribute) of a device, for humans. */
export function deviceLabel(d: Pick<DeviceRecord, 'id' | 'identity'> | undefined, id: string): string {
  if (!d) return id;
  const v = d.identity['fort_id'] ?? Object.values(d.identity)[0];
  return typeof v === 'string' ? v : id;
}

/** One line per device of each deployment: `dev-cloud mender status`. */
export function formatDeployments(deployments: readonly DeploymentRecord[], devices: readonly DeviceRecord[]): string {
  if (deployments.length === 0) return 'no deployments\n';
  const byId = new Map(devices.map((d) => [d.id, d]));
  const rows = deployments.flatMap((dep) =>
    dep.devices.map((dd) => [
      dep.id,
      dep.artifactName,
      deviceLabel(byId.get(dd.deviceId), dd.deviceId),
      dd.status + (dd.substate ? ` (${dd.substate})` : ''),
      dd.history[dd.history.length - 1]?.at ?? dep.createdAt,
      dd.history.map((h) => h.status).join(' > ') + (dd.log.length ? `; log: ${dd.log.length} lines` : ''),
    ]),
  );
  return table(['DEPLOYMENT', 'ARTIFACT', 'DEVICE', 'STATUS', 'SINCE', 'HISTORY'], rows);
}

/** `dev-cloud mender devices`. */
export function formatDevices(devices: readonly DeviceRecord[]): string {
  if (devices.length === 0) return 'no devices have asked to authenticate yet\n';
  const rows = devices.map((d) => [
    d.id,
    d.status,
    JSON.stringify(d.identity),
    d.provides?.['artifact_name'] ?? '-',
    Object.entries(d.inventory)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : v}`)
      .join(' '),
  ]);
  return table(['DEVICE', 'STATUS', 'IDENTITY', 'ARTIFACT', 'INVENTORY'], rows);
}

/** `dev-cloud mender artifacts`. */
export function formatArtifacts(artifacts: readonly ArtifactView[]): string {
  if (artifacts.length === 0) return 'no artifacts\n';
  return table(
    ['ID', 'NAME', 'DEVICE TYPES', 'SIZE', 'SIGNED'],
    artifacts.map((a) => [a.id, a.name, a.deviceTypes.join(','), String(a.size), a.signed ? 'yes' : 'no']),
  );
}
