import { Command } from 'commander';
import { readRuntimeEnv } from '../../lib/runtime-env.js';
import { readReleaseInfo } from '../../lib/version.js';
import { wholeNumber } from '../args.js';
import { defaultConfigFile } from '../config.js';

interface DoctorCliOptions {
  agentConfig?: string;
  dmConfig?: string;
  timeout: number;
  /** fortctl's global options. */
  config?: string;
  json?: boolean;
}

/** `fortctl doctor`: is this installation able to run, and why not (like `iotedge check`). */
export function doctorCommand(): Command {
  return new Command('doctor')
    .description(
      'check the installation: config files, key and certificate files, the agent over its admin API, DNS, each outbound endpoint with its TLS identity (through the proxy when one is set), the clock; one [ok|warn|FAIL] line each, exit 1 on a FAIL. Run it as root: it reads /etc/fort',
    )
    .option(
      '--agent-config <file>',
      'agent.toml (default: $FORT_AGENT_CONFIG, ./.fort-dev/agent.toml, /etc/fort/agent.toml)',
    )
    .option(
      '--dm-config <file>',
      'deployment-manager.toml; skipped with a warning when absent (default: $FORT_DM_CONFIG, ./.fort-dev/deployment-manager.toml, /etc/fort/deployment-manager.toml)',
    )
    .option('--timeout <seconds>', 'timeout of each network check (1..120)', wholeNumber(1, 120), 5)
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals<DoctorCliOptions>();
      const cwd = process.cwd();
      const agentEnv = readRuntimeEnv('FORT_AGENT_CONFIG');
      const files = {
        agent: o.agentConfig ?? defaultConfigFile('agent.toml', agentEnv.configFile, cwd),
        dm:
          o.dmConfig ?? defaultConfigFile('deployment-manager.toml', readRuntimeEnv('FORT_DM_CONFIG').configFile, cwd),
        fortctl: o.config ?? defaultConfigFile('fortctl.toml', readRuntimeEnv('FORTCTL_CONFIG').configFile, cwd),
      };
      // Loaded only for this command: the probes, the TLS and proxy helpers.
      const [{ runDoctor }, { formatCheck }, { daemonEntryPoints }] = await Promise.all([
        import('./run.js'),
        import('./check.js'),
        import('./configs.js'),
      ]);
      const checks = await runDoctor({
        files,
        daemons: daemonEntryPoints(readReleaseInfo().root),
        timeoutMs: o.timeout * 1000,
        proxyEnv: agentEnv.proxy,
      });
      const failed = checks.some((c) => c.level === 'fail');
      process.stdout.write(
        o.json ? `${JSON.stringify({ ok: !failed, checks }, null, 2)}\n` : `${checks.map(formatCheck).join('\n')}\n`,
      );
      process.exitCode = failed ? 1 : 0;
    });
}
