/**
 * One catalogue of failure families with stable codes (after fastify's FST_ERR_* and
 * undici's UND_ERR_*). `fatal` tells callers whether retrying can help.
 */
export type FortErrorCode =
  | 'FORT_ERR_CONFIG'
  | 'FORT_ERR_TLS_MATERIAL'
  | 'FORT_ERR_SECRET_PERMISSIONS'
  | 'FORT_ERR_STORE_SCHEMA'
  | 'FORT_ERR_STORE'
  | 'FORT_ERR_STATE_FILE'
  | 'FORT_ERR_FILE_EXISTS'
  | 'FORT_ERR_ADMIN_LINK'
  | 'FORT_ERR_PROXY'
  /** A cloud endpoint (credentials provider, cloud API) failed or answered wrongly. */
  | 'FORT_ERR_UPSTREAM'
  /** No fresh authorisation decision and the cloud unreachable: refused (fail closed). */
  | 'FORT_ERR_AUTHZ_UNAVAILABLE'
  /** The keys that sign user tokens cannot be fetched: no token can be checked (fail closed, 503). */
  | 'FORT_ERR_AUTHN_UNAVAILABLE'
  | 'FORT_ERR_FORBIDDEN'
  /** The request is valid but the thing is in a state that does not allow it (e.g. cancel a finished reload). */
  | 'FORT_ERR_CONFLICT'
  /** A request or event whose content is not what its schema allows (names the field). */
  | 'FORT_ERR_BAD_REQUEST'
  /** The thing asked for (an app, an app version's table) does not exist. */
  | 'FORT_ERR_NOT_FOUND'
  /** An app's load definition is invalid (names the field and why). */
  | 'FORT_ERR_DEFINITION'
  /** A reload's source could not be read or held data its definition does not allow (names table/row/column, never values). */
  | 'FORT_ERR_RELOAD_SOURCE'
  | 'FORT_ERR_RELOAD_TIMEOUT'
  | 'FORT_ERR_RELOAD_CANCELLED'
  /** More rows than `reloads.max_rows`, or the disk filled up. */
  | 'FORT_ERR_RELOAD_TOO_LARGE'
  /** Started `reloads.max_attempts` times (crashes included) without finishing. */
  | 'FORT_ERR_RELOAD_ATTEMPTS'
  /** The update server refused or failed a call (names the call and status). */
  | 'FORT_ERR_UPDATE_SERVER'
  /** The device is not (yet) accepted by the update server's operator. */
  | 'FORT_ERR_NOT_ACCEPTED'
  /** The server answered 409 to a status report: the deployment was aborted. */
  | 'FORT_ERR_DEPLOYMENT_ABORTED'
  /** An update artifact (or the release inside it) failed a check; names the entry and why. */
  | 'FORT_ERR_ARTIFACT'
  /** An operator's update hook (state script) refused the step, failed or timed out. */
  | 'FORT_ERR_UPDATE_HOOK'
  /** Pairing failed: the cloud refused the code (its problem code is in the message) or could not be reached. */
  | 'FORT_ERR_PAIRING';

export class FortError extends Error {
  readonly code: FortErrorCode;
  readonly fatal: boolean;
  constructor(code: FortErrorCode, message: string, options: { fatal?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.fatal = options.fatal ?? true;
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

/** sysexits.h codes used at start-up so systemd can refuse to restart-loop on them. */
export const EXIT = {
  OK: 0,
  SOFTWARE: 70,
  DATAERR: 65,
  CONFIG: 78,
} as const;

/** By stable code, not class: any config-family error exits 78, however it was constructed. */
const EXIT_BY_CODE: Partial<Record<FortErrorCode, number>> = {
  FORT_ERR_CONFIG: EXIT.CONFIG,
  FORT_ERR_TLS_MATERIAL: EXIT.CONFIG,
  FORT_ERR_SECRET_PERMISSIONS: EXIT.CONFIG,
  FORT_ERR_STORE_SCHEMA: EXIT.DATAERR,
};

export function exitCodeFor(err: unknown): number {
  return (err instanceof FortError && EXIT_BY_CODE[err.code]) || EXIT.SOFTWARE;
}
