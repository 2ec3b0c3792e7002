import { fdatasync } from 'node:fs';

/** Bytes between two kicks: a fraction of a second of a download, a few tens of ms of this disk's writing. */
const KICK_EVERY_BYTES = 32 * 1024 * 1024;

/**
 * Has the kernel write a file's pages while the file is still being written: an fdatasync every
 * `everyBytes`, in the thread pool, one at a time, never awaited by the writer. The fsync that
 * makes the file durable then has only the tail left to flush, instead of the whole file on an
 * update's critical path (200 MB written, then fsynced: 134 ms; kicked every 32 MB: 21 ms, on
 * this machine). Only a head start: durability is still the final fsync's. A kick's error is kept
 * and thrown by `settle()`, since Linux reports a writeback error once per open file, possibly to
 * the kick rather than the final fsync. Call `settle()` before closing the fd, so no kick runs on
 * a closed (or reused) descriptor.
 */
export function writebackKicker(
  fd: number,
  everyBytes = KICK_EVERY_BYTES,
  datasync: (fd: number, done: (err: NodeJS.ErrnoException | null) => void) => void = fdatasync,
) {
  let since = 0;
  let inFlight: Promise<void> | undefined;
  let error: NodeJS.ErrnoException | undefined;
  return {
    /** `bytes` more were written to `fd`. */
    wrote(bytes: number): void {
      since += bytes;
      if (since < everyBytes || inFlight) return;
      since = 0;
      inFlight = new Promise<void>((resolve) =>
        datasync(fd, (err) => {
          error ??= err ?? undefined;
          inFlight = undefined;
          resolve();
        }),
      );
    },
    /** Waits for the kick under way, if any; throws the first error a kick met. */
    async settle(): Promise<void> {
      await inFlight;
      if (error) throw error;
    },
  };
}
