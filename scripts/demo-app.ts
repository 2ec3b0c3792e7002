import Database from 'better-sqlite3';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../lib/files.js';
import { mulberry32 } from './seeded-random.js';

export const DEMO_APP_ID = 'demo-sales';

/** Where the demo's customers are: country → sales region. */
const COUNTRIES: readonly (readonly [country: string, region: string])[] = [
  ['Sweden', 'Nordics'],
  ['Norway', 'Nordics'],
  ['Germany', 'Western Europe'],
  ['France', 'Western Europe'],
  ['Netherlands', 'Western Europe'],
  ['United States', 'North America'],
  ['Canada', 'North America'],
  ['Japan', 'Asia Pacific'],
  ['Australia', 'Asia Pacific'],
];
const FIRST = ['Alpine', 'Boreal', 'Cedar', 'Delta', 'Evergreen', 'Fjord', 'Granite', 'Harbor', 'Iris', 'Juniper'];
const SECOND = ['Trading', 'Foods', 'Logistics', 'Labs'];
/** Product and unit price; "Widget, large" has a comma (a quoted CSV field). */
const PRODUCTS: readonly (readonly [product: string, price: number])[] = [
  ['Widget', 19.9],
  ['Widget, large', 34.5],
  ['Gadget', 49],
  ['Gizmo', 12.5],
  ['Sprocket', 7.25],
  ['Doohickey', 89],
];

export interface DemoCustomer {
  id: number;
  name: string;
  country: string;
  region: string;
}

/** The 40 customers: names and countries fixed by their id. */
export function demoCustomers(): DemoCustomer[] {
  return Array.from({ length: FIRST.length * SECOND.length }, (_, k) => {
    const [country, region] = COUNTRIES[(k * 5) % COUNTRIES.length]!;
    return { id: k + 1, name: `${FIRST[k % FIRST.length]} ${SECOND[Math.floor(k / FIRST.length)]}`, country, region };
  });
}

const DAY_MS = 86_400_000;
const FIRST_DAY = Date.UTC(2025, 0, 1);

/**
 * The demo's orders as CSV: id, order date (2025–2026), the customer's region, the product, the
 * customer's name, quantity, amount (quantity × unit price, some discounted) and whether it is
 * paid. Regions buy differently (Asia Pacific never buys Sprockets, Doohickeys sell mostly in
 * North America), so selecting one changes the others' possible values.
 */
export function demoOrdersCsv(orders: number, seed = 2026): string {
  const next = mulberry32(seed);
  const customers = demoCustomers();
  const lines = ['id,order_date,region,product,customer,quantity,amount,paid'];
  for (let i = 1; i <= orders; i++) {
    const c = customers[Math.floor(next() * customers.length)]!;
    let p = Math.floor(next() * PRODUCTS.length);
    if (c.region === 'Asia Pacific' && PRODUCTS[p]![0] === 'Sprocket') p = 0;
    if (PRODUCTS[p]![0] === 'Doohickey' && c.region !== 'North America' && next() < 0.7) p = 2;
    const [product, price] = PRODUCTS[p]!;
    const quantity = 1 + Math.floor(next() * 12);
    const discount = next() < 0.2 ? 0.9 : 1;
    const amount = Math.round(price * quantity * discount * 100) / 100;
    const day = new Date(FIRST_DAY + Math.floor(next() * 730) * DAY_MS).toISOString().slice(0, 10);
    const paid = next() < 0.85;
    const quoted = product.includes(',') ? `"${product}"` : product;
    lines.push([i, day, c.region, quoted, c.name, quantity, amount, paid].join(','));
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Sources of the dev stack's demo app: `orders.csv` (a few thousand orders with regions,
 * products, customers, dates and amounts) and `crm.sqlite` (the customers), both generated so
 * nothing binary is committed. The same seed gives the same data; regenerating only when
 * missing keeps a developer's edits.
 */
export function writeDemoSources(dir: string, orders = 3000): void {
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const csv = join(dir, 'orders.csv');
  if (!existsSync(csv)) writeFileAtomic(csv, demoOrdersCsv(orders), 0o640);
  const crm = join(dir, 'crm.sqlite');
  if (!existsSync(crm)) {
    const tmp = `${crm}.tmp`;
    rmSync(tmp, { force: true });
    const db = new Database(tmp);
    db.exec(
      'CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL, region TEXT NOT NULL)',
    );
    const insert = db.prepare('INSERT INTO customers VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (const c of demoCustomers()) insert.run(c.id, c.name, c.country, c.region);
    })();
    db.close();
    // Renamed complete: a half-written database is never picked up.
    renameSync(tmp, crm);
  }
}

/**
 * The demo app's definition (TOML): the CSV orders and the SQLite customers. The region comes
 * first in both: the viewer charts by the first text field.
 */
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
  { name = "order_date", type = "date" },
  { name = "region", type = "string" },
  { name = "product", type = "string" },
  { name = "customer", type = "string" },
  { name = "quantity", type = "integer" },
  { name = "amount", type = "number" },
  { name = "paid", type = "boolean" },
]

[[tables]]
name = "customers"
connector = "sqlite"
database = "crm.sqlite"
query = "SELECT id, region, country, name FROM customers ORDER BY id"
`;
}
