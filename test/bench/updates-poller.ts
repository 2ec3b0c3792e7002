#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

/**
 * Bench baseline of dm-poll-cpu-ms: the least a device does per poll cycle — one keep-alive
 * mTLS agent (as the DM's), POST deployments/next + PATCH inventory with a device JWT — so
 * the DM's cycle is compared with the same exchanges and nothing else. Runs until SIGTERM.
 * Usage: updates-poller.js <server url> <ca> <cert> <key> <jwt> <device type> <interval ms>
 */
const [url, ca, cert, key, jwt, deviceType, interval] = process.argv.slice(2);
if (!url || !ca || !cert || !key || !jwt || !deviceType || !interval) {
  process.stderr.write('usage: updates-poller.js <server url> <ca> <cert> <key> <jwt> <device type> <interval ms>\n');
  process.exit(64);
}
const agent = new Agent({
  ca: readFileSync(ca),
  cert: readFileSync(cert),
  key: readFileSync(key),
  keepAlive: true,
  maxSockets: 4,
});

const send = (method: string, path: string, body: unknown) =>
  new Promise<number>((resolve, reject) => {
    const data = JSON.stringify(body);
    const headers = {
      authorization: `Bearer ${jwt}`,
      accept: 'application/json',
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(data)),
    };
    const req = request(new URL(path, url), { method, agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(data);
  });

const inventory = [
  { name: 'artifact_name', value: 'unknown' },
  { name: 'fort_version', value: 'unknown' },
  { name: 'device_type', value: deviceType },
  { name: 'os', value: 'bench' },
  { name: 'hostname', value: 'bench' },
  { name: 'free_disk_bytes', value: 1 },
];

async function cycle() {
  const next = await send('POST', '/api/devices/v2/deployments/device/deployments/next', {
    device_provides: { artifact_name: 'unknown', device_type: deviceType },
  });
  const inv = await send('PATCH', '/api/devices/v1/inventory/device/attributes', inventory);
  if (next !== 204 || inv !== 200) throw new Error(`deployments/next ${next}, inventory ${inv}`);
}

const fail = (err: Error) => {
  process.stderr.write(`updates-poller: ${err.message}\n`);
  process.exit(1);
};
const timer = setInterval(() => void cycle().catch(fail), Number(interval));
void cycle().catch(fail);
process.on('SIGTERM', () => {
  clearInterval(timer);
  agent.destroy();
  process.exit(0);
});
