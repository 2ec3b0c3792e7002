import { dirname, join } from 'node:path';
import { z } from 'zod';
import { loadTomlConfig, resolveFrom, resolveTlsFrom } from '../lib/config/load.js';
import {
  filePath,
  httpsUrl,
  identifier,
  intRange,
  lifecycleSection,
  logSection,
  tlsFiles,
} from '../lib/config/fields.js';

/** How the update server is called, the same whether it is configured or comes from pairing. */
const serverCalls = (retryDoc: string) => ({
  poll_seconds: intRange(1, 86_400).default(1800).describe('Deployment poll interval (±10 % jitter)'),
  inventory_seconds: intRange(1, 604_800).default(28_800).describe('Inventory report interval (±10 % jitter)'),
  retry_seconds: intRange(1, 86_400).default(300).describe(retryDoc),
  timeout_seconds: intRange(1, 600).default(30).describe('Timeout of one API call'),
});

/** fort-deployment-manager configuration (deployment-manager.toml). */
export const deploymentManagerConfigSchema = z.strictObject({
  log: logSection(),
  state: z.strictObject({
    path: filePath().describe('JSON state file of the update state machine (written temp → fsync → rename)'),
  }),
  agent: z.strictObject({
    admin_url: httpsUrl().describe('URL of the agent admin API, e.g. https://127.0.0.1:8444'),
    health_interval_seconds: intRange(1, 3600).default(30).describe('How often the agent is health-checked'),
    timeout_seconds: intRange(1, 120).default(5).describe('Timeout of one admin API call'),
    tls: tlsFiles().describe('ca = trust-zone root; cert/key = the deployment-manager client certificate'),
  }),
  updates: z
    .strictObject({
      install_root: filePath().describe(
        'Where releases live: <install_root>/releases/<version> and the current symlink systemd runs',
      ),
      staging_dir: filePath().describe(
        'Downloads and verified payloads before they are installed (same file system as install_root is best)',
      ),
      device_type: identifier().describe('Mender device type; artifacts must list it'),
      artifact_keys: z
        .array(filePath())
        .default([])
        .describe('PEM public keys artifacts must be signed with (several during a key rotation)'),
      allow_unsigned: z.boolean().default(false).describe('Accept unsigned artifacts (never in production)'),
      max_artifact_mb: intRange(1, 16_384).default(512).describe('Larger artifacts are refused while downloading'),
      health_deadline_seconds: intRange(5, 3600)
        .default(120)
        .describe('The new release must report healthy within this, or it is rolled back'),
      agent_restart_dir: filePath()
        .optional()
        .describe(
          "A directory root's fort-agent-restart.path watches: to start a new (or the previous) release the agent is restarted at once (systemctl restart) rather than drained and restarted after its unit's RestartSec=. Absent, or no restart seen within 3 s: drained",
        ),
      resume_seconds: intRange(1, 3600)
        .default(30)
        .describe(
          'How often an update left by a stopped operator command (install FILE, rollback) is looked for and carried on',
        ),
      disk_wait_minutes: intRange(0, 10_080)
        .default(60)
        .describe(
          'No room to download or unpack an artifact: the deployment waits this long for space (looking every disk_retry_seconds, reporting downloading) before it fails',
        ),
      disk_retry_seconds: intRange(1, 3600)
        .default(30)
        .describe('While an update waits for disk space, free space is looked at again this often'),
      abort_check_seconds: intRange(1, 3600)
        .default(30)
        .describe(
          'While downloading, the deployment is reported downloading again this often: one aborted at the server stops the download',
        ),
      step_attempts: intRange(1, 100)
        .default(5)
        .describe(
          'Starts of one update step (a crash during it makes another start) before the deployment is failed or rolled back',
        ),
      hooks_dir: filePath()
        .optional()
        .describe(
          'Operator hooks run before each step: executables named <step> or <step>_<name> (e.g. installing_10_backup); before the switch a failing hook fails the update',
        ),
      hook_timeout_seconds: intRange(1, 3600)
        .default(300)
        .describe('A hook running longer is killed and counts as failed'),
      server: z
        .strictObject({
          url: httpsUrl().describe('Update server (Mender device API), e.g. https://updates.example.com'),
          tls: tlsFiles().describe('ca = the update server CA; cert/key = the device certificate (mutual TLS)'),
          auth_key: filePath().describe('Device auth key (PEM, 0600); generated (Ed25519) on first start if missing'),
          id_data: z
            .record(z.string(), z.string())
            .describe('Identity attributes sent to the server, e.g. { fort_id = "fort-1" }'),
          ...serverCalls('Wait after a failed call or while the device is not yet accepted'),
        })
        .optional()
        .describe('Absent = no update server: only `install FILE` (air-gapped sites)'),
      paired: z
        .strictObject({
          identity_dir: filePath()
            .optional()
            .describe(
              'Where this process keeps its own device key and certificate (default: update-identity/ beside state.path)',
            ),
          ...serverCalls(
            'Wait after a failed call, while the device is not yet accepted, or while the fort is not paired',
          ),
        })
        .optional()
        .describe(
          'The update server comes from pairing: once the agent is paired, this process makes its own device key and gets it certified through the agent (instead of [updates.server])',
        ),
      self_update: z
        .strictObject({
          install_root: filePath().describe(
            "The deployment manager's own releases (root's): <install_root>/releases/<version>, current (what the unit runs) and stable (the last one that proved itself)",
          ),
          request_dir: filePath().describe(
            "Where this process asks root's fort-dm-self-update service for a new version and proves it runs (this process's, e.g. under its state directory)",
          ),
          root_state_dir: filePath().describe(
            "Root's self-update status (readable by this process) and staging, e.g. /var/lib/fort/dm-self-update",
          ),
          proof_seconds: intRange(5, 3600)
            .default(120)
            .describe(
              'A new deployment manager must be ready, reach the update server and say so within this, or root restores the previous one',
            ),
          unit: z
            .string()
            .regex(/^[A-Za-z0-9@._-]+\.service$/)
            .default('fort-deployment-manager.service')
            .describe('The systemd unit root restarts on the new (or restored) version'),
        })
        .optional()
        .describe(
          'Updates of the deployment manager itself, installed by root (fort-dm-self-update.service); absent = a release updates the agent only',
        ),
    })
    .superRefine((u, ctx) => {
      if (u.server && u.paired)
        ctx.addIssue({
          code: 'custom',
          path: ['paired'],
          params: { redactValue: true },
          message: 'either [updates.server] or [updates.paired], not both',
        });
    })
    .optional()
    .describe('Software updates of the agent; absent = updates disabled'),
  lifecycle: lifecycleSection(),
});

export type DeploymentManagerConfig = z.output<typeof deploymentManagerConfigSchema>;

export function loadDeploymentManagerConfig(file: string): DeploymentManagerConfig {
  const { dir, config } = loadTomlConfig(file, deploymentManagerConfigSchema);
  return {
    ...config,
    state: { path: resolveFrom(dir, config.state.path) },
    agent: { ...config.agent, tls: resolveTlsFrom(dir, config.agent.tls) },
    updates: config.updates && {
      ...config.updates,
      install_root: resolveFrom(dir, config.updates.install_root),
      staging_dir: resolveFrom(dir, config.updates.staging_dir),
      agent_restart_dir: config.updates.agent_restart_dir && resolveFrom(dir, config.updates.agent_restart_dir),
      hooks_dir: config.updates.hooks_dir && resolveFrom(dir, config.updates.hooks_dir),
      artifact_keys: config.updates.artifact_keys.map((k) => resolveFrom(dir, k)),
      server: config.updates.server && {
        ...config.updates.server,
        tls: resolveTlsFrom(dir, config.updates.server.tls),
        auth_key: resolveFrom(dir, config.updates.server.auth_key),
      },
      self_update: config.updates.self_update && {
        ...config.updates.self_update,
        install_root: resolveFrom(dir, config.updates.self_update.install_root),
        request_dir: resolveFrom(dir, config.updates.self_update.request_dir),
        root_state_dir: resolveFrom(dir, config.updates.self_update.root_state_dir),
      },
      paired: config.updates.paired && {
        ...config.updates.paired,
        identity_dir: resolveFrom(
          dir,
          config.updates.paired.identity_dir ?? join(dirname(config.state.path), 'update-identity'),
        ),
      },
    },
  };
}
