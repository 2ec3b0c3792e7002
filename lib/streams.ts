/** What `drained` needs of a writable (Node streams and streamx ones alike). */
export interface DrainableWritable {
  readonly destroyed: boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Resolves on 'drain', or on 'close' or when already destroyed (a destroyed stream never drains; the caller sees `destroyed`). */
export function drained(dest: DrainableWritable): Promise<void> {
  return new Promise((resolve) => {
    if (dest.destroyed) return resolve();
    const done = () => {
      dest.off('drain', done);
      dest.off('close', done);
      resolve();
    };
    dest.once('drain', done);
    dest.once('close', done);
  });
}
