import { open, stat, type FileHandle } from 'node:fs/promises';
import type { Stats } from 'node:fs';

const CHUNK = 64 * 1024;
const NEWLINE = 0x0a;
/** Bytes before the read offset remembered to notice a file rewritten in place (see `changedUnder`). */
const MARK = 64;

/**
 * The last `n` lines of the first `size` bytes of an open file, read backwards in chunks so a
 * large log costs only its tail. A final newline ends the last line; it does not start another.
 */
export async function lastLines(fh: FileHandle, size: number, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let found = 0;
  for (let end = size; end > 0 && n > 0;) {
    const start = Math.max(0, end - CHUNK);
    const buf = await readAt(fh, start, end - start);
    for (let i = buf.length - 1; i >= 0; i -= 1) {
      if (buf[i] !== NEWLINE || start + i === size - 1) continue;
      if (++found === n) return Buffer.concat([buf.subarray(i + 1), ...parts]);
    }
    parts.unshift(buf);
    end = start;
  }
  return n > 0 ? Buffer.concat(parts) : Buffer.alloc(0);
}

export interface TailOptions {
  file: string;
  lines: number;
  follow: boolean;
  /** How often a followed file is looked at: polling works on every file system (fs.watch does not on NFS and some overlays). */
  intervalMs?: number;
  /** Ends following (SIGINT, a closed stdout). */
  signal: AbortSignal;
  /** Where the bytes go; awaited, so a slow reader slows the tail instead of filling memory. */
  write: (chunk: Buffer) => Promise<void>;
}

/**
 * `tail -n N [-F]` in Node: the last lines, then with `follow` whatever is appended until the
 * signal aborts. A file that shrinks or is rewritten in place (copytruncate) is read again from
 * its start; one replaced by another (rename-and-create rotation) is read to its end, then the
 * new one from its start. A missing file while following is waited for.
 */
export async function tailFile(o: TailOptions): Promise<void> {
  let fh = await open(o.file, 'r');
  try {
    const st = await fh.stat();
    const last = await lastLines(fh, st.size, o.lines);
    await o.write(last);
    if (!o.follow) return;
    let ino = st.ino;
    let offset = st.size;
    /**
     * The last bytes printed (at most MARK), i.e. what the file held just before `offset`: taken
     * from what was printed, not read again (the file may be rewritten meanwhile).
     */
    let mark = last.length > 0 ? last.subarray(-MARK) : await readMark(fh, offset);
    const restart = () => {
      offset = 0;
      mark = Buffer.alloc(0);
    };
    /**
     * Prints what the file holds past the offset. Each read takes the bytes before the offset
     * along and checks them against what was printed last, in one read(2): a file truncated and
     * written past the offset (copytruncate) shows however the looks and the rewrite interleave,
     * and is read again from its start.
     */
    const readOn = async () => {
      for (;;) {
        const head = await readOnce(fh, offset - mark.length, mark.length + CHUNK);
        if (head.length < mark.length || !head.subarray(0, mark.length).equals(mark)) {
          restart();
          continue;
        }
        if (head.length === mark.length) return;
        const fresh = head.subarray(mark.length);
        await o.write(fresh);
        mark = Buffer.concat([mark, fresh]).subarray(-MARK);
        offset += fresh.length;
      }
    };
    while (await sleep(o.intervalMs ?? 250, o.signal)) {
      const now = await statOrMissing(o.file);
      if (now === undefined || now.ino !== ino) {
        // Rotated away: what was still written to the old file first.
        await readOn();
        if (now === undefined) continue;
        const next = await open(o.file, 'r').catch(() => undefined);
        if (!next) continue;
        await fh.close();
        fh = next;
        ino = now.ino;
        restart();
      } else if (now.size < offset) restart();
      await readOn();
    }
  } finally {
    await fh.close();
  }
}

const readMark = (fh: FileHandle, offset: number) => readAt(fh, Math.max(0, offset - MARK), Math.min(MARK, offset));

/** One read(2): what it returns was in the file at one moment (several reads could straddle a rewrite). */
async function readOnce(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  return buf.subarray(0, bytesRead);
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

async function statOrMissing(file: string): Promise<Stats | undefined> {
  try {
    return await stat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Waits `ms`; false once the signal has aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve(!signal.aborted);
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
