/**
 * Exit codes of every fort process. CLIs (fortctl, fort-deployment-manager's commands) exit
 * with the `exit` of the error that stopped them; daemons, at start, only with the sysexits
 * codes their units' RestartPreventExitStatus= names (65, 78), else 70.
 */
export const EXIT = {
  /** Done, healthy, valid. */
  OK: 0,
  /** Not healthy, refused by the state of things or by a check, or bad usage. */
  FAILED: 1,
  /** The peer (agent, cloud, update server) could not be reached, or refused who we are. */
  UNREACHABLE: 2,
  /** EX_DATAERR: data written by a newer release. */
  DATAERR: 65,
  /** EX_SOFTWARE: an internal error (a bug). */
  SOFTWARE: 70,
  /** EX_TEMPFAIL: busy; try again later. */
  TEMPFAIL: 75,
  /** EX_CONFIG: bad configuration, or an unusable key or certificate. */
  CONFIG: 78,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface CatalogueEntry {
  /** HTTP status of the problem when an API answers with this code. */
  status: number;
  /** The problem's title: one per code (RFC 9457), the occurrence goes in `detail`. */
  title: string;
  /** Exit code of a process this error stops. */
  exit: ExitCode;
  /** Retrying cannot help (Mender's fatal/transient split); a call site may say otherwise. */
  fatal: boolean;
  /** What it means, for the README. */
  doc: string;
}

const { FAILED, UNREACHABLE, DATAERR, SOFTWARE, TEMPFAIL, CONFIG } = EXIT;
const fatal = true;
const transient = false;

/**
 * One catalogue of failure families with stable codes (after fastify's FST_ERR_* and undici's
 * UND_ERR_*). Every FORT_ERR_* the product uses is a key here (a test scans the source); the
 * README's table is generated from it (scripts/error-reference.ts).
 */
export const ERRORS = {
  // Start-up: the process cannot run as configured.
  FORT_ERR_CONFIG: {
    status: 500,
    title: 'Bad configuration',
    exit: CONFIG,
    fatal,
    doc: 'A config file is missing, unreadable or invalid; names the file, the field and why',
  },
  FORT_ERR_NOT_CONFIGURED: {
    status: 503,
    title: 'Not configured',
    exit: CONFIG,
    fatal,
    doc: 'A feature this fort is not configured for (e.g. the client data API without `[api.auth]` and `[cloud]`)',
  },
  FORT_ERR_TLS_MATERIAL: {
    status: 422,
    title: 'Unusable key or certificate',
    exit: CONFIG,
    fatal,
    doc: 'A key, certificate or CA bundle that cannot be read, parsed or used (expired, not matching its key)',
  },
  FORT_ERR_SECRET_PERMISSIONS: {
    status: 422,
    title: 'Secret readable by others',
    exit: CONFIG,
    fatal,
    doc: 'A private key or password file readable by group or others',
  },
  FORT_ERR_STORE_SCHEMA: {
    status: 500,
    title: 'Database from a newer release',
    exit: DATAERR,
    fatal,
    doc: 'A database written by a newer release: refused and left untouched',
  },
  FORT_ERR_STORE: {
    status: 500,
    title: 'Database error',
    exit: SOFTWARE,
    fatal,
    doc: 'A database or app version file that cannot be opened or read',
  },
  FORT_ERR_STATE_FILE: {
    status: 500,
    title: 'Unreadable state file',
    exit: FAILED,
    fatal,
    doc: "The deployment manager's state file is not JSON or not a state this release understands",
  },
  FORT_ERR_FILE_EXISTS: {
    status: 409,
    title: 'File exists',
    exit: FAILED,
    fatal,
    doc: 'A file a command would create exists already (`--force` overwrites where offered)',
  },
  FORT_ERR_INTERNAL: {
    status: 500,
    title: 'Internal error',
    exit: SOFTWARE,
    fatal,
    doc: "An error nobody expected (a bug); the API answers with the request id of the fort's log line",
  },

  // Requests and commands refused for what they ask.
  FORT_ERR_USAGE: {
    status: 400,
    title: 'Bad usage',
    exit: FAILED,
    fatal,
    doc: 'A command line a CLI cannot act on (e.g. a file that does not exist)',
  },
  FORT_ERR_BAD_REQUEST: {
    status: 400,
    title: 'Bad request',
    exit: FAILED,
    fatal,
    doc: 'A request or event whose content is not what its schema allows; names the field',
  },
  FORT_ERR_TOO_LARGE: {
    status: 413,
    title: 'Request too large',
    exit: FAILED,
    fatal,
    doc: "A request body over its route's limit, or an app definition over 256 KiB; names the limit",
  },
  FORT_ERR_NOT_FOUND: {
    status: 404,
    title: 'Not found',
    exit: FAILED,
    fatal,
    doc: 'The thing asked for (an app, a table, a reload, a previous release) does not exist',
  },
  FORT_ERR_CONFLICT: {
    status: 409,
    title: 'Conflict',
    exit: FAILED,
    fatal,
    doc: 'The request is valid but the thing is in a state that does not allow it (pair a paired fort, cancel a finished reload)',
  },
  FORT_ERR_BUSY: {
    status: 503,
    title: 'Busy',
    exit: TEMPFAIL,
    fatal: transient,
    doc: 'Another process holds the update lock, or an update is under way; try again later',
  },
  FORT_ERR_DEFINITION: {
    status: 422,
    title: 'Invalid app definition',
    exit: FAILED,
    fatal,
    doc: "An app's load definition is invalid; names the field and why",
  },

  // Who is asking.
  FORT_ERR_UNAUTHENTICATED: {
    status: 401,
    title: 'Unauthenticated',
    exit: UNREACHABLE,
    fatal,
    doc: 'No user token, or one refused (the reason is in `detail`)',
  },
  FORT_ERR_FORBIDDEN: {
    status: 403,
    title: 'Forbidden',
    exit: UNREACHABLE,
    fatal,
    doc: 'A user the cloud does not allow this action, or a trust-zone certificate not allowed this route',
  },
  FORT_ERR_RATE_LIMITED: {
    status: 429,
    title: 'Too many requests',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'Over the per-IP or per-user request limit; see `retry-after`',
  },
  FORT_ERR_AUTHN_UNAVAILABLE: {
    status: 503,
    title: 'Authentication unavailable',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'The keys that sign user tokens cannot be fetched: no token can be checked (fail closed)',
  },
  FORT_ERR_AUTHZ_UNAVAILABLE: {
    status: 503,
    title: 'Authorisation unavailable',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'No fresh authorisation decision and the cloud unreachable: refused (fail closed)',
  },
  FORT_ERR_DRAINING: {
    status: 503,
    title: 'Draining',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'The agent is draining to restart',
  },

  // Links to peers.
  FORT_ERR_ADMIN_LINK: {
    status: 502,
    title: 'Admin API unreachable or refused',
    exit: UNREACHABLE,
    fatal: transient,
    doc: "The agent's admin API could not be reached or refused the call",
  },
  FORT_ERR_PROXY: {
    status: 502,
    title: 'Proxy refused or unreachable',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'The HTTPS proxy could not be reached or refused the tunnel',
  },
  FORT_ERR_UPSTREAM: {
    status: 502,
    title: 'Cloud refused or unreachable',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'A cloud endpoint (credentials provider, cloud API, JWKS) failed or answered wrongly',
  },
  FORT_ERR_BAD_RESPONSE: {
    status: 502,
    title: 'Bad response',
    exit: UNREACHABLE,
    fatal: transient,
    doc: "A peer answered with a body that is not JSON (the cause of the link's error)",
  },
  FORT_ERR_PAIRING: {
    status: 422,
    title: 'Pairing failed',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'The cloud refused the pairing code (its problem code is in `detail`) or could not be reached',
  },

  // Reloads (the code a failed reload records and reports).
  FORT_ERR_RELOAD_SOURCE: {
    status: 422,
    title: 'Reload source refused',
    exit: FAILED,
    fatal,
    doc: "A reload's source could not be read or held data its definition does not allow; names table, row and column, never values",
  },
  FORT_ERR_RELOAD_TIMEOUT: {
    status: 504,
    title: 'Reload timed out',
    exit: FAILED,
    fatal: transient,
    doc: 'A reload ran longer than `reloads.timeout_seconds`',
  },
  FORT_ERR_RELOAD_CANCELLED: {
    status: 409,
    title: 'Reload cancelled',
    exit: FAILED,
    fatal: transient,
    doc: 'A reload cancelled by an operator, or stopped by a shutdown',
  },
  FORT_ERR_RELOAD_TOO_LARGE: {
    status: 413,
    title: 'Reload too large',
    exit: FAILED,
    fatal,
    doc: 'More rows than `reloads.max_rows`, or the disk filled up',
  },
  FORT_ERR_DISK_LOW: {
    status: 507,
    title: 'Not enough disk space',
    exit: FAILED,
    fatal: transient,
    doc: 'Free space under the floor (`store.disk_min_free_mib`): new reloads are refused until space returns, the current versions keep serving; names the directory, what is free and the floor. Also a request that had to store something while the data disk was full: nothing was changed, try again once space is freed',
  },
  FORT_ERR_RELOAD_ATTEMPTS: {
    status: 500,
    title: 'Reload attempts exhausted',
    exit: FAILED,
    fatal,
    doc: 'Started `reloads.max_attempts` times (crashes included) without finishing',
  },
  FORT_ERR_RELOAD_INTERRUPTED: {
    status: 503,
    title: 'Reload interrupted',
    exit: FAILED,
    fatal: transient,
    doc: 'The agent stopped during the reload; a queued one takes its place',
  },

  // Queries (engine).
  FORT_ERR_QUERY_TIMEOUT: {
    status: 503,
    title: 'Query timed out',
    exit: FAILED,
    fatal: transient,
    doc: 'A query ran longer than the per-query timeout and was interrupted; the engine goes on serving',
  },
  FORT_ERR_QUERY_TOO_LARGE: {
    status: 422,
    title: 'Query answer too large',
    exit: FAILED,
    fatal,
    doc: 'A query answer past the byte budget of one answer; names the limit (ask for fewer rows or columns)',
  },

  FORT_ERR_ENGINE_UNAVAILABLE: {
    status: 503,
    title: 'Engine unavailable',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'The agent could not reach fort-engine over the trust zone (restarting, or refused its certificate); try again shortly',
  },

  // Updates (deployment manager).
  FORT_ERR_UPDATE_SERVER: {
    status: 502,
    title: 'Update server refused or unreachable',
    exit: UNREACHABLE,
    fatal: transient,
    doc: 'The update server refused or failed a call, or a download; names the call and status',
  },
  FORT_ERR_NOT_ACCEPTED: {
    status: 403,
    title: 'Device not accepted',
    exit: UNREACHABLE,
    fatal: transient,
    doc: "The device is not (yet) accepted by the update server's operator",
  },
  FORT_ERR_DEPLOYMENT_ABORTED: {
    status: 409,
    title: 'Deployment aborted',
    exit: FAILED,
    fatal: transient,
    doc: 'The update server answered 409 to a status report: the deployment was aborted',
  },
  FORT_ERR_ARTIFACT: {
    status: 422,
    title: 'Artifact refused',
    exit: FAILED,
    fatal,
    doc: 'An update artifact (or the release inside it) failed a check; names the entry and why',
  },
  FORT_ERR_UPDATE_HOOK: {
    status: 500,
    title: 'Update hook refused',
    exit: FAILED,
    fatal: transient,
    doc: "An operator's update hook refused the step, failed or timed out",
  },
} as const satisfies Record<`FORT_ERR_${string}`, CatalogueEntry>;

export type FortErrorCode = keyof typeof ERRORS;

export function isFortErrorCode(code: unknown): code is FortErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERRORS, code);
}
