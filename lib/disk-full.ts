/** A full disk, as SQLite (SQLITE_FULL) or the file system (ENOSPC, EDQUOT) says it: space to wait for, not a bug. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT';
}
