import type { Logger } from './logger.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A level asked for a while: what `fortctl log-level` sets and shows. */
export interface TemporaryLevel {
  level: LogLevel;
  /** ISO time it reverts to the configured level by itself. */
  until: string;
}

export interface LogLevelView {
  level: string;
  configured: string;
  until?: string;
}

/**
 * A service's log level changed at runtime for a while, then back to the configured one by
 * itself (a forgotten `debug` must not fill the journal for months). Child loggers follow the
 * root's level. The change and the revert are logged at the level that shows them.
 */
export function createLogLevelControl(o: { logger: Logger; configured: string; now?: () => number }) {
  const now = o.now ?? Date.now;
  let timer: NodeJS.Timeout | undefined;
  let until: number | undefined;

  const revert = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (until === undefined) return;
    until = undefined;
    o.logger.info({ level: o.configured }, 'log level back to the configured one');
    o.logger.level = o.configured;
  };

  const set = (level: LogLevel, forMs: number): TemporaryLevel => {
    if (timer) clearTimeout(timer);
    o.logger.level = level;
    until = now() + forMs;
    timer = setTimeout(revert, forMs).unref();
    const answer = { level, until: new Date(until).toISOString() };
    o.logger.info({ ...answer, configured: o.configured }, 'log level set for a while');
    // Only written when the new level lets debug lines through: the proof that it does.
    o.logger.debug({ level }, 'debug lines on');
    return answer;
  };

  return {
    set,
    /**
     * Follows a level asked for elsewhere (the agent's word to the deployment manager): applied
     * until its `until`, reverted when there is none any more. The same request twice changes nothing.
     */
    follow(asked: TemporaryLevel | undefined): void {
      const end = asked ? Date.parse(asked.until) : NaN;
      if (!asked || !(end > now())) return revert();
      if (end === until && o.logger.level === asked.level) return;
      set(asked.level, end - now());
    },
    view(): LogLevelView {
      return {
        level: o.logger.level,
        configured: o.configured,
        ...(until !== undefined ? { until: new Date(until).toISOString() } : {}),
      };
    },
    stop(): void {
      if (timer) clearTimeout(timer);
    },
  };
}
export type LogLevelControl = ReturnType<typeof createLogLevelControl>;
