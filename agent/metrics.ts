import type { FastifyReply, FastifyRequest } from 'fastify';
import { UPDATE_STEPS, type UpdateStateView } from '../lib/update-state.js';
import { counter, counterOf, gauge, histogram, type MetricFamily } from './metrics-exposition.js';

/**
 * What the agent's modules report as it happens. They take it as an optional dependency and
 * default to NO_METRICS, so a module built without one (unit tests) works the same.
 */
export interface MetricsRecorder {
  reloadFinished(outcome: 'succeeded' | 'failed' | 'cancelled', seconds: number): void;
  /** `route` is the route pattern (bounded), never the requested URL. */
  apiRequest(api: 'client' | 'admin', route: string, method: string, status: number, seconds: number): void;
}

export const NO_METRICS: MetricsRecorder = {
  reloadFinished: () => {},
  apiRequest: () => {},
};

/**
 * Read at scrape time rather than kept up to date: the store, and the counters the link, the
 * inbox and the authoriser keep for health anyway, are the truth.
 */
export interface MetricSources {
  link?: () => { up: boolean; connects: number };
  /** Deliveries the inbox committed (handled, duplicate or dead-lettered), and dead letters by reason code. */
  inbox?: () => { received: number; duplicates: number; deadLetteredBy: Readonly<Record<string, number>> };
  authorizer?: () => { hits: number; misses: number; coalesced: number };
  outboxBacklog?: () => number;
  reloadBacklog?: () => { queued: number; running: number };
  updateState?: () => UpdateStateView;
}

export interface AgentMetrics extends MetricsRecorder {
  /** Sets the scrape-time sources (the modules they read are made after the metrics). */
  sample(sources: MetricSources): void;
  /** Process and Node.js metrics (prom-client's), then the fort's (`fort_*`), in the text format. */
  scrape(): Promise<{ contentType: string; text: string }>;
}

const REQUEST_BOUNDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
const RELOAD_BOUNDS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800];

/**
 * The agent's metrics. Counts are plain numbers from the start (metrics-exposition.ts);
 * prom-client, for the process and Node.js metrics, is loaded at the first scrape, in its own
 * registry: loaded at start it would cost ~5 MB of idle RSS on every agent, scraped or not.
 */
export function createAgentMetrics(): AgentMetrics {
  let sources: MetricSources = {};
  const reloads = counter('fort_reloads_total', 'Reloads finished, by outcome', ['outcome']);
  const reloadSeconds = histogram(
    'fort_reload_duration_seconds',
    'Duration of finished reloads, by outcome',
    ['outcome'],
    RELOAD_BOUNDS,
  );
  const requests = counter(
    'fort_api_requests_total',
    'HTTP requests answered, by API, route pattern, method and status',
    ['api', 'route', 'method', 'status'],
  );
  const requestSeconds = histogram(
    'fort_api_request_duration_seconds',
    'Time to answer HTTP requests, by API, route pattern and method',
    ['api', 'route', 'method'],
    REQUEST_BOUNDS,
  );
  const update = () => sources.updateState?.() ?? { state: null, reportedAt: null };

  const families: MetricFamily[] = [
    gauge('fort_iot_link_up', 'IoT link connected and subscribed (1) or not (0)', () => [
      { value: sources.link?.().up ? 1 : 0 },
    ]),
    counterOf('fort_iot_reconnects_total', 'IoT link connections after the first since the agent started', () => [
      { value: Math.max(0, (sources.link?.().connects ?? 0) - 1) },
    ]),
    counterOf(
      'fort_events_received_total',
      'Cloud events committed by the inbox (handled, duplicate or dead-lettered)',
      () => [{ value: sources.inbox?.().received ?? 0 }],
    ),
    counterOf('fort_events_duplicates_total', 'Redelivered events the inbox ignored', () => [
      { value: sources.inbox?.().duplicates ?? 0 },
    ]),
    counterOf('fort_events_dead_lettered_total', 'Events dead-lettered, by reason code', () =>
      Object.entries(sources.inbox?.().deadLetteredBy ?? {}).map(([reason, value]) => ({ labels: { reason }, value })),
    ),
    gauge('fort_outbox_backlog', 'Status messages waiting in the outbox to be published to the cloud', () =>
      sources.outboxBacklog ? [{ value: sources.outboxBacklog() }] : [],
    ),
    // The inbox has no backlog of its own: each event is handled in the transaction that commits it, before its PUBACK.
    gauge('fort_reload_backlog', "Reloads queued or running: the work the cloud's events and users leave", () =>
      byLabel('state', sources.reloadBacklog?.(), { queued: 'queued', running: 'running' }),
    ),
    reloads,
    reloadSeconds,
    counterOf(
      'fort_authz_cache_requests_total',
      'Authorisation decisions asked for: hit (cached), miss (asked the cloud), coalesced (joined a question in flight)',
      () => byLabel('result', sources.authorizer?.(), { hit: 'hits', miss: 'misses', coalesced: 'coalesced' }),
    ),
    requests,
    requestSeconds,
    gauge(
      'fort_update_state',
      "The deployment manager's update step as it last reported it: 1 for the current step (absent until it reports)",
      () => {
        const s = update().state;
        return s ? UPDATE_STEPS.map((step) => ({ labels: { step }, value: step === s.step ? 1 : 0 })) : [];
      },
    ),
    gauge('fort_update_info', 'The installed and previous release as the deployment manager last reported them', () => {
      const s = update().state;
      return s
        ? [
            {
              labels: { installed: s.installed ?? '', previous: s.previous ?? '', artifact: s.installedArtifact ?? '' },
              value: 1,
            },
          ]
        : [];
    }),
    gauge(
      'fort_update_reported_timestamp_seconds',
      'When the deployment manager last reported its update state',
      () => {
        const at = update().reportedAt;
        return at ? [{ value: Date.parse(at) / 1000 }] : [];
      },
    ),
  ];

  let processMetrics: Promise<{ contentType: string; metrics(): Promise<string> }> | undefined;
  const loadProcessMetrics = async () => {
    const { default: prom } = await import('prom-client');
    const registry = new prom.Registry();
    prom.collectDefaultMetrics({ register: registry });
    return registry;
  };

  return {
    sample(s) {
      sources = { ...sources, ...s };
    },
    async scrape() {
      processMetrics ??= loadProcessMetrics();
      const registry = await processMetrics;
      const own = families.map((f) => f.render()).join('\n');
      return { contentType: registry.contentType, text: `${await registry.metrics()}\n${own}` };
    },
    reloadFinished(outcome, seconds) {
      reloads.inc({ outcome });
      reloadSeconds.observe({ outcome }, seconds);
    },
    apiRequest(api, route, method, status, seconds) {
      requests.inc({ api, route, method, status: String(status) });
      requestSeconds.observe({ api, route, method }, seconds);
    },
  };
}

/**
 * An onResponse hook counting every answered request under its route pattern (unknown routes
 * are `unmatched`): the raw URL would make a series per path and query. Add it before the routes.
 */
export function requestObserver(api: 'client' | 'admin', metrics: MetricsRecorder) {
  return (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    metrics.apiRequest(
      api,
      req.routeOptions.url ?? 'unmatched',
      req.method,
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    done();
  };
}

/** One sample per label value, read from the counts' field it names; none before the source exists. */
function byLabel<C extends object>(label: string, counts: C | undefined, fields: Record<string, keyof C>) {
  if (!counts) return [];
  return Object.entries(fields).map(([value, field]) => ({ labels: { [label]: value }, value: Number(counts[field]) }));
}
