// Records when this release was built: a host clock earlier than that is certainly wrong
// (boards without an RTC boot in 1970), which would make TLS and SigV4 fail.
import { writeFileSync, mkdirSync } from 'node:fs';
mkdirSync('dist', { recursive: true });
writeFileSync('dist/build-info.json', `${JSON.stringify({ builtAt: new Date().toISOString() })}\n`);
