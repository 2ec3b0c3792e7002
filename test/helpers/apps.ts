/** App fixtures: the implementation lives in the agent so that the dev stack can seed apps too. */
export { seedApp, type SeedAppOptions, type SeedTable, type SeededApp } from '../../agent/apps/seed.js';
