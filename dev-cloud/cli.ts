#!/usr/bin/env node
import { Command } from 'commander';
import { createLogger } from '../lib/logger.js';
import { createNotifier } from '../lib/sd-notify.js';
import { readRuntimeEnv } from '../lib/runtime-env.js';
import { createLifecycle } from '../lib/lifecycle.js';
import { loadTlsMaterial } from '../lib/tls.js';
import { failStart } from '../lib/process-main.js';
import { loadDevCloudConfig, type DevCloudConfig } from './config.js';
import { startDevCloudServer } from './server.js';

const NAME = 'dev-cloud';
const runtime = readRuntimeEnv('FORT_DEV_CLOUD_CONFIG');
const program = new Command(NAME).description('Local stand-in for the Fort cloud (development and tests only)');

program
  .command('serve')
  .option('-c, --config <file>', 'dev-cloud.toml (default: $FORT_DEV_CLOUD_CONFIG or ./.fort-dev/dev-cloud.toml)')
  .action(async (opts: { config?: string }) => {
    let config: DevCloudConfig;
    try {
      config = loadDevCloudConfig(opts.config ?? runtime.configFile ?? '.fort-dev/dev-cloud.toml');
    } catch (err) {
      failStart(NAME, err);
    }
    const log = createLogger({ level: config.log.level, name: NAME });
    const notifier = createNotifier(runtime.notify, log.child({ module: 'sd-notify' }));
    const lifecycle = createLifecycle({ log, notifier, stopTimeoutMs: 5000, exit: (c) => process.exit(c) });
    lifecycle.installSignalHandlers();
    try {
      const server = await startDevCloudServer({ host: config.server.host, port: config.server.port, tls: loadTlsMaterial(config.server.tls), log });
      lifecycle.add({ name: 'server', stop: () => server.close() });
      log.info({ url: `https://${config.server.host}:${config.server.port}` }, 'dev-cloud ready');
      notifier.ready(`serving https://${config.server.host}:${config.server.port}`);
    } catch (err) {
      failStart(NAME, err, log);
    }
  });

await program.parseAsync(process.argv);
