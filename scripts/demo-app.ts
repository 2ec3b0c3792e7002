import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/files.js';

export const DEMO_APP_ID = 'demo-sales';

/**
 * Sources of the dev stack's demo app: `orders.csv` (typed columns, a quoted field with a
 * comma) and `crm.sqlite` (customers), both generated so nothing binary is committed. The
 * same seed gives the same data; regenerating only when missing keeps a developer's edits.
 */
export function writeDemoSources(dir: string, orders = 500): void {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const csv = join(dir, 'orders.csv');
  if (!existsSync(csv)) {
    const lines = ['id,customer_id,product,amount,paid,day'];
    for (let i = 1; i <= orders; i++) {
      const product = i % 10 === 0 ? '"Widget, large"' : ['Widget', 'Gadget', 'Gizmo'][i % 3];
      lines.push(
        [
          i,
          ((i * 7) % 40) + 1,
          product,
          ((i * 1937) % 100_000) / 100,
          i % 4 === 0 ? 'false' : 'true',
          `2026-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}`,
        ].join(','),
      );
    }
    writeFileAtomic(csv, `${lines.join('\n')}\n`, 0o640);
  }
  const crm = join(dir, 'crm.sqlite');
  if (!existsSync(crm)) {
    const tmp = `${crm}.tmp`;
    rmSync(tmp, { force: true });
    const db = new Database(tmp);
    db.exec('CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO customers VALUES (?, ?, ?)');
    const countries = ['SE', 'DE', 'FR', 'US', 'JP'];
    db.transaction(() => {
      for (let i = 1; i <= 40; i++) insert.run(i, `Customer ${i}`, countries[i % countries.length]);
    })();
    db.close();
    // Renamed complete: a half-written database is never picked up.
    renameSync(tmp, crm);
  }
}

/** The demo app's definition (TOML): the CSV orders and the SQLite customers. */
export function demoAppToml(): string {
  return `# The dev stack's demo app: register with  fortctl apps add demo-app.toml
id = "${DEMO_APP_ID}"
name = "Demo sales"
space = "sales"

[[tables]]
name = "orders"
connector = "csv"
path = "orders.csv"
columns = [
  { name = "id", type = "integer" },
  { name = "customer_id", type = "integer" },
  { name = "product", type = "string" },
  { name = "amount", type = "number" },
  { name = "paid", type = "boolean" },
  { name = "day", type = "date" },
]

[[tables]]
name = "customers"
connector = "sqlite"
database = "crm.sqlite"
query = "SELECT id, name, country FROM customers ORDER BY id"
`;
}
