import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startSupervised, type Supervised } from '../../../scripts/supervisor/process.js';
import { DIST } from '../../helpers/fort.js';

describe('watchdog pings come from the event loop', () => {
  let proc: Supervised | undefined;
  afterAll(async () => {
    await proc?.stop();
  });

  it('a blocked event loop sends no WATCHDOG=1 (systemd would restart it); pings resume after', async () => {
    // WATCHDOG_USEC 200 ms: a ping every 100 ms while the loop runs.
    proc = await startSupervised({
      name: 'watchdog-blocker',
      script: join(DIST, 'test/fixtures/watchdog-blocker.js'),
      args: [],
      watchdogUsec: 200_000,
    });
    await proc.waitReady(10_000);
    const p = proc;
    const pings = () => p.notify.messages.filter((m) => m['WATCHDOG'] === '1').length;
    await p.notify.waitFor(() => pings() >= 3, 5_000, 'three pings');
    const line = (text: string) =>
      new Promise<number>((resolve) => {
        const on = (l: string) => {
          if (l !== text) return;
          p.events.off('stdout', on);
          resolve(pings());
        };
        p.events.on('stdout', on);
      });
    const blocking = line('blocking');
    const unblocked = line('unblocked');
    p.kill('SIGUSR2');
    const atBlock = await blocking;
    const atUnblock = await unblocked;
    // 1.5 s blocked is 15 ping periods; a ping or two sent just before the block may be read late.
    expect(atUnblock - atBlock).toBeLessThanOrEqual(2);
    await p.notify.waitFor(() => pings() >= atUnblock + 3, 5_000, 'pings after the block');
  });
});
