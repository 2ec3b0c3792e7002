import { ERRORS, EXIT, isFortErrorCode, type ExitCode, type FortErrorCode } from './error-catalogue.js';

export {
  ERRORS,
  EXIT,
  isFortErrorCode,
  type CatalogueEntry,
  type ExitCode,
  type FortErrorCode,
} from './error-catalogue.js';

/**
 * An error of the catalogue (lib/error-catalogue.ts): its code fixes the HTTP status, the
 * problem title and the exit code. `fatal` tells callers whether retrying can help: the
 * code's own answer unless the call site knows better.
 */
export class FortError extends Error {
  readonly code: FortErrorCode;
  readonly fatal: boolean;
  /**
   * How long the peer asked us to wait before the next try (its `Retry-After` on a 429 or 503,
   * or on a Mender 401 for a device awaiting acceptance), in milliseconds from when the answer
   * arrived, already held to sane bounds (lib/retry-after.ts: 1 s .. 1 h). Absent: the peer
   * gave no usable hint, so the caller's own backoff applies.
   */
  declare readonly retryAfterMs?: number;
  constructor(
    code: FortErrorCode,
    message: string,
    options: { fatal?: boolean; cause?: unknown; retryAfterMs?: number | undefined } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.fatal = options.fatal ?? ERRORS[code].fatal;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** Bad configuration: the process must not start (exit 78, EX_CONFIG). */
export class ConfigError extends FortError {
  readonly file: string;
  readonly problems: string[];
  constructor(file: string, problems: string[]) {
    super('FORT_ERR_CONFIG', problems.map((p) => `${file}: ${p}`).join('\n'));
    this.file = file;
    this.problems = problems;
  }
}

/** Keys, certificates or CA bundles that cannot be used; also a start-up failure. */
export class TlsMaterialError extends FortError {
  constructor(message: string, code: FortErrorCode = 'FORT_ERR_TLS_MATERIAL', cause?: unknown) {
    super(code, message, { cause });
  }
}

export class StoreError extends FortError {
  constructor(message: string, code: FortErrorCode = 'FORT_ERR_STORE', cause?: unknown) {
    super(code, message, { cause });
  }
}

/** What a CLI exits with when `err` stops it: its code's exit; anything unforeseen is internal (70). */
export function cliExitCode(err: unknown): ExitCode {
  return err instanceof FortError ? ERRORS[err.code].exit : EXIT.SOFTWARE;
}

/**
 * What a daemon exits with when it cannot start: the sysexits codes systemd is told not to
 * restart on (65 data from a newer release, 78 bad config) by code, however the error was
 * constructed; anything else is 70.
 */
export function daemonExitCode(err: unknown): ExitCode {
  const exit = cliExitCode(err);
  return exit === EXIT.CONFIG || exit === EXIT.DATAERR ? exit : EXIT.SOFTWARE;
}

/**
 * The catalogue code for a peer's problem answer (`status`, `code` from its body): the peer's
 * own code when it is about this request (a 4xx that a CLI exits 1, 2 or 75 on); a peer's own
 * failure (5xx, or a code about its configuration or data) is a refusal of the link.
 */
export function peerProblemCode(status: number, code: unknown): FortErrorCode {
  const about = (c: FortErrorCode) =>
    ([EXIT.FAILED, EXIT.UNREACHABLE, EXIT.TEMPFAIL] as ExitCode[]).includes(ERRORS[c].exit);
  if (status >= 400 && status < 500 && isFortErrorCode(code) && about(code)) return code;
  return status === 403 ? 'FORT_ERR_FORBIDDEN' : 'FORT_ERR_ADMIN_LINK';
}

/** A CLI's exit code for a peer's problem answer (see peerProblemCode): 409 → 1, 403 → 2, … */
export function problemExitCode(status: number, code: unknown): ExitCode {
  return ERRORS[peerProblemCode(status, code)].exit;
}
