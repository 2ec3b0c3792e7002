import { z } from 'zod';
import { resolveTlsFrom } from '../../lib/config/load.js';
import { httpsUrl, identifier, intRange, tlsFiles } from '../../lib/config/fields.js';

/** `[engine]` of agent.toml: fort-engine over the trust zone; absent = the agent loads and serves app data itself. */
export const engineSection = () =>
  z.strictObject({
    url: httpsUrl().describe('fort-engine over trust-zone mTLS, e.g. https://127.0.0.1:8446'),
    tls: tlsFiles()
      .optional()
      .describe("The agent's trust-zone certificate and the installation's root (default: [admin] tls)"),
    server_name: identifier()
      .default('engine')
      .describe("Common name the engine's certificate must carry (another trust-zone member is refused)"),
    query_timeout_ms: intRange(100, 600_000)
      .default(35_000)
      .describe("Longest wait for one query's answer; keep it above the engine's queries.timeout_ms"),
    max_answer_mib: intRange(1, 1024)
      .default(64)
      .describe('Bigger answers from the engine are refused (the engine has its own, lower budget)'),
  });

export type EngineConfig = z.output<ReturnType<typeof engineSection>>;

export function resolveEnginePaths(dir: string, c: EngineConfig): EngineConfig {
  return { ...c, ...(c.tls ? { tls: resolveTlsFrom(dir, c.tls) } : {}) };
}
