#!/usr/bin/env node
import { readFileSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { agentConfigSchema } from '../agent/config.js';
import { deploymentManagerConfigSchema } from '../deployment-manager/config.js';
import { fortctlConfigSchema } from '../agent/cli/config.js';

interface JsonSchema {
  type?: string;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  format?: string;
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
}

/** Markdown tables of every config key, generated from the zod schemas (the single source). */
export function configReference(): string {
  const files: [string, z.ZodType][] = [
    ['agent.toml', agentConfigSchema],
    ['deployment-manager.toml', deploymentManagerConfigSchema],
    ['fortctl.toml', fortctlConfigSchema],
  ];
  return files.map(([name, schema]) => {
    const rows: string[] = [];
    walk(z.toJSONSchema(schema, { io: 'input' }) as JsonSchema, '', true, rows);
    return [`#### ${name}`, '', '| key | type | required / default | meaning |', '|---|---|---|---|', ...rows].join('\n');
  }).join('\n\n');
}

function walk(node: JsonSchema, prefix: string, required: boolean, rows: string[]): void {
  if (node.type === 'object' && node.properties) {
    if (prefix && node.description) rows.push(`| \`[${prefix}]\` | table | ${required ? 'required' : 'optional'} | ${node.description} |`);
    for (const [key, child] of Object.entries(node.properties)) {
      walk(child, prefix ? `${prefix}.${key}` : key, (node.required ?? []).includes(key), rows);
    }
    return;
  }
  const dflt = node.default !== undefined ? `default \`${JSON.stringify(node.default)}\`` : required ? 'required' : 'optional';
  rows.push(`| \`${prefix}\` | ${typeOf(node)} | ${dflt} | ${node.description ?? ''} |`);
}

function typeOf(n: JsonSchema): string {
  if (n.enum) return n.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (n.type === 'integer' && n.minimum !== undefined) return `integer ${n.minimum}..${n.maximum ?? '∞'}`;
  if (n.type === 'array') return `list of ${n.items?.type ?? 'values'}`;
  if (n.format === 'uri') return 'https URL';
  return n.type ?? 'value';
}

const START = '<!-- config-reference:start -->';
const END = '<!-- config-reference:end -->';

/** README text with the reference between its markers replaced by the generated one. */
export function withReference(readme: string): string {
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README lacks the ${START} … ${END} markers`);
  return `${readme.slice(0, a + START.length)}\n${configReference()}\n${readme.slice(b)}`;
}

// `node dist/scripts/config-reference.js [--write README.md]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const target = process.argv[2] === '--write' ? process.argv[3] : undefined;
  if (target) writeFileSync(target, withReference(readFileSync(target, 'utf8')));
  else process.stdout.write(`${configReference()}\n`);
}
