#!/usr/bin/env node
import { z } from 'zod';
import { sectionCommand, withSection } from './readme-section.js';
import { agentConfigSchema } from '../agent/config.js';
import { deploymentManagerConfigSchema } from '../deployment-manager/config.js';
import { fortctlConfigSchema } from '../fortctl/config.js';
import { engineConfigSchema } from '../engine/config.js';

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
    ['engine.toml', engineConfigSchema],
  ];
  return files
    .map(([name, schema]) => {
      const rows: string[] = [];
      walk(z.toJSONSchema(schema, { io: 'input' }) as JsonSchema, '', true, rows);
      return [`#### ${name}`, '', '| key | type | required / default | meaning |', '|---|---|---|---|', ...rows].join(
        '\n',
      );
    })
    .join('\n\n');
}

function walk(node: JsonSchema, prefix: string, required: boolean, rows: string[]): void {
  if (node.type === 'object' && node.properties) {
    if (prefix && node.description)
      rows.push(`| \`[${prefix}]\` | table | ${required ? 'required' : 'optional'} | ${node.description} |`);
    for (const [key, child] of Object.entries(node.properties)) {
      walk(child, prefix ? `${prefix}.${key}` : key, (node.required ?? []).includes(key), rows);
    }
    return;
  }
  const dflt =
    node.default !== undefined ? `default \`${JSON.stringify(node.default)}\`` : required ? 'required' : 'optional';
  rows.push(`| \`${prefix}\` | ${typeOf(node)} | ${dflt} | ${node.description ?? ''} |`);
}

function typeOf(n: JsonSchema): string {
  if (n.enum) return n.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (n.type === 'integer' && n.minimum !== undefined) return `integer ${n.minimum}..${n.maximum ?? '∞'}`;
  if (n.type === 'array') return `list of ${n.items?.type ?? 'values'}`;
  if (n.format === 'uri') return 'https URL';
  return n.type ?? 'value';
}

/** README text with the reference between its `config-reference` markers regenerated. */
export const withReference = (readme: string) => withSection(readme, 'config-reference', configReference());

// `node dist/scripts/config-reference.js [--write README.md]`
sectionCommand(import.meta.url, 'config-reference', configReference);
