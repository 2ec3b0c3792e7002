import { existsSync, writeFileSync } from 'node:fs';

/** Debian's libfaketime (package libfaketime), the multi-threaded build: node runs threads. */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/**
 * The environment that runs a process under libfaketime: its wall clock is offset by what `file`
 * says (`+0`, `+1d`, `-1h`; read again within a second), its monotonic clock untouched, as with
 * an NTP step or `date -s` on a real host. The file is created at `+0`.
 */
export function fakeClockEnv(file: string): Record<string, string> {
  if (!existsSync(LIBFAKETIME)) throw new Error(`${LIBFAKETIME} is missing: apt-get install libfaketime`);
  writeFileSync(file, '+0\n');
  return {
    LD_PRELOAD: LIBFAKETIME,
    FAKETIME_TIMESTAMP_FILE: file,
    FAKETIME_CACHE_DURATION: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}
