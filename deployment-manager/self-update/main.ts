#!/usr/bin/env node
import { execFile } from 'node:child_process';
import { lstatSync } from 'node:fs';
import { promisify } from 'node:util';
import { ConfigError } from '../../lib/errors.js';
import { createLogger } from '../../lib/logger.js';
import { failStart } from '../../lib/process-main.js';
import { parseDaemonArgs } from '../../lib/daemon-args.js';
import { loadArtifactKeyFiles } from '../artifact/keys.js';
import { loadDeploymentManagerConfig } from '../config.js';
import { selfUpdatePaths } from './contract.js';
import { runRootSelfUpdate } from './root-install.js';

/**
 * Composition root of fort-dm-self-update.service (root, oneshot, started by
 * fort-dm-self-update.path when the deployment manager asks for a new version of itself).
 * Reads the deployment manager's root-owned config and keys; nothing fort-dm writes is
 * trusted (see root-install.ts).
 */
const NAME = 'fort-dm-self-update';
const args = parseDaemonArgs(process.argv, NAME, 'deployment-manager.toml (default /etc/fort/deployment-manager.toml)');
const file = args.config ?? '/etc/fort/deployment-manager.toml';
const log = createLogger({ level: 'info', name: NAME });
try {
  const config = loadDeploymentManagerConfig(file);
  const self = config.updates?.self_update;
  if (!config.updates || !self) throw new ConfigError(file, ['updates.self_update: not configured; nothing to do']);
  const keys = loadArtifactKeyFiles(config.updates.artifact_keys);
  let dmUid: number;
  try {
    const st = lstatSync(self.request_dir);
    if (!st.isDirectory()) throw new Error('not a directory');
    dmUid = st.uid;
  } catch {
    log.info({ dir: self.request_dir }, 'no request directory: nothing to do');
    process.exit(0);
  }
  const unit = self.unit;
  const outcome = await runRootSelfUpdate({
    paths: selfUpdatePaths(self),
    installRoot: self.install_root,
    workDir: self.root_state_dir,
    dmUid,
    keys,
    deviceType: config.updates.device_type,
    allowUnsigned: config.updates.allow_unsigned,
    maxArtifactBytes: config.updates.max_artifact_mb * 1024 * 1024,
    proofMs: self.proof_seconds * 1000,
    pollMs: 500,
    restartUnit: async () => {
      await promisify(execFile)('systemctl', ['restart', '--no-block', unit]);
    },
    log,
  });
  log.info({ outcome }, 'self-update run finished');
} catch (err) {
  failStart(NAME, err, log);
}
