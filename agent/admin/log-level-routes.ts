import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sendBadRequest, sendProblem } from '../../lib/http-problem.js';
import {
  LOG_LEVELS,
  type LogLevel,
  type LogLevelControl,
  type LogLevelView,
  type TemporaryLevel,
} from '../../lib/log-level.js';
import { OPERATOR_ONLY } from './roles.js';

export const LOG_SERVICES = ['agent', 'engine', 'deployment-manager'] as const;

/** `PUT /admin/v1/log-level`: a level for a while (default 10 minutes, at most a day), per service. */
export const logLevelBody = z.strictObject({
  service: z.enum(LOG_SERVICES, { error: `expected one of ${LOG_SERVICES.join(', ')}` }).default('agent'),
  level: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` }),
  for_seconds: z
    .int({ error: 'expected an integer 1..86400' })
    .min(1, { error: 'expected an integer 1..86400' })
    .max(86_400, { error: 'expected an integer 1..86400' })
    .default(600),
});

/** The level the deployment manager is asked to log at; it reads it with each health check of the agent. */
export function createRequestedLevel(now: () => number = Date.now) {
  let asked: TemporaryLevel | undefined;
  return {
    ask(level: LogLevel, forMs: number): TemporaryLevel {
      asked = { level, until: new Date(now() + forMs).toISOString() };
      return asked;
    },
    /** Undefined once it has run out (the deployment manager then reverts by itself too). */
    asked(): TemporaryLevel | undefined {
      if (asked && Date.parse(asked.until) <= now()) asked = undefined;
      return asked;
    },
  };
}
export type RequestedLevel = ReturnType<typeof createRequestedLevel>;

export interface LogLevelRoutesDeps {
  agent: LogLevelControl;
  /** fort-engine's level, set over the trust zone; absent without `[engine]`. */
  engine?: {
    set(level: LogLevel, forSeconds: number): Promise<TemporaryLevel>;
    view(): Promise<LogLevelView>;
  };
  deploymentManager: RequestedLevel;
}

/** `fortctl log-level`: each service's level for a while, reverting by itself. Operators only. */
export function registerLogLevelRoutes(app: FastifyInstance, deps: LogLevelRoutesDeps) {
  app.put('/admin/v1/log-level', OPERATOR_ONLY, async (req, reply) => {
    const body = logLevelBody.safeParse(req.body ?? {});
    if (!body.success) return sendBadRequest(reply, body.error);
    const { service, level, for_seconds: seconds } = body.data;
    req.log.info({ service, level, seconds, by: req.peer?.name }, 'log level change asked');
    switch (service) {
      case 'agent':
        return { service, ...deps.agent.set(level, seconds * 1000) };
      case 'engine':
        if (!deps.engine)
          return sendProblem(reply, 'FORT_ERR_NOT_CONFIGURED', 'fort-engine is not configured ([engine])');
        return { service, ...(await deps.engine.set(level, seconds)) };
      case 'deployment-manager':
        // Applied at its next health check of the agent (agent.health_interval_seconds).
        return { service, ...deps.deploymentManager.ask(level, seconds * 1000), applies: 'at its next health check' };
    }
  });

  app.get('/admin/v1/log-level', OPERATOR_ONLY, async () => {
    const engine = deps.engine ? await deps.engine.view().catch((err: Error) => ({ error: err.message })) : undefined;
    return {
      agent: deps.agent.view(),
      ...(engine ? { engine } : {}),
      'deployment-manager': deps.deploymentManager.asked() ?? null,
    };
  });
}
