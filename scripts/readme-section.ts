import { readFileSync, writeFileSync } from 'node:fs';

/**
 * README text with the generated section `name` (between `<!-- name:start -->` and
 * `<!-- name:end -->`) replaced by `content`. The README's reference tables are generated
 * this way, and a test fails when one is stale.
 */
export function withSection(readme: string, name: string, content: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = readme.indexOf(start);
  const b = readme.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README lacks the ${start} … ${end} markers`);
  return `${readme.slice(0, a + start.length)}\n${content}\n${readme.slice(b)}`;
}

/** A generator script's command line: `node <script> [--write README.md]` (without: print the section). */
export function sectionCommand(moduleUrl: string, name: string, generate: () => string): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  const target = process.argv[2] === '--write' ? process.argv[3] : undefined;
  if (target) writeFileSync(target, withSection(readFileSync(target, 'utf8'), name, generate()));
  else process.stdout.write(`${generate()}\n`);
}
