import { readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { formatIssues } from './format.js';

export interface LoadedConfig<T> {
  file: string;
  dir: string;
  config: T;
}

/**
 * Read a TOML file and validate it. Every problem is reported at once as
 * `<file>: <field.path>: <reason>, got <value>` so an operator fixes them in one go.
 */
export function loadTomlConfig<S extends z.ZodType>(file: string, schema: S): LoadedConfig<z.output<S>> {
  const name = basename(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(name, [`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(name, [`line ${err.line}, column ${err.column}: invalid TOML: ${firstLine(err.message)}`]);
    }
    throw new ConfigError(name, [`invalid TOML: ${String(err)}`]);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(name, formatIssues(parsed.error.issues, raw));
  return { file: resolve(file), dir: dirname(resolve(file)), config: parsed.data };
}

/** Paths in a config file are relative to the file, so a config dir can be moved whole. */
export function resolveFrom(dir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dir, path);
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/** A `tls` table with its file paths made absolute. */
export function resolveTlsFrom<T extends Record<string, string>>(dir: string, tls: T): T {
  return Object.fromEntries(Object.entries(tls).map(([k, v]) => [k, resolveFrom(dir, v)])) as T;
}
