#!/usr/bin/env node
import { ERRORS, EXIT } from '../lib/error-catalogue.js';
import { sectionCommand, withSection } from './readme-section.js';

const EXIT_NAMES: Record<number, string> = {
  [EXIT.FAILED]: 'failed',
  [EXIT.UNREACHABLE]: 'unreachable',
  [EXIT.DATAERR]: 'data',
  [EXIT.SOFTWARE]: 'internal',
  [EXIT.TEMPFAIL]: 'busy',
  [EXIT.CONFIG]: 'config',
};

/** A Markdown table of the error catalogue, generated from lib/error-catalogue.ts (the single source). */
export function errorReference(): string {
  const rows = Object.entries(ERRORS).map(
    ([code, e]) =>
      `| \`${code}\` | ${e.status} | ${e.title} | ${e.exit} ${EXIT_NAMES[e.exit]} | ${e.fatal ? 'fatal' : 'transient'} | ${e.doc} |`,
  );
  return ['| code | HTTP | title | exit | fatal / transient | meaning |', '|---|---|---|---|---|---|', ...rows].join(
    '\n',
  );
}

/** README text with the catalogue between its `error-catalogue` markers regenerated. */
export const withErrorReference = (readme: string) => withSection(readme, 'error-catalogue', errorReference());

// `node dist/scripts/error-reference.js [--write README.md]`
sectionCommand(import.meta.url, 'error-catalogue', errorReference);
