import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'status'>;
  httpDuration: Histogram<'method'>;
  /** Register a gauge whose value is read at scrape time. */
  gauge(name: string, help: string, read: () => number | Record<string, number>, label?: string): void;
  counter<L extends string>(name: string, help: string, labels?: L[]): Counter<L>;
  /** Register a histogram (seconds) with the given bucket bounds. */
  histogram(name: string, help: string, buckets: number[]): Histogram;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'whipcast_process_' });
  const httpRequests = new Counter({
    name: 'whipcast_http_requests_total',
    help: 'HTTP requests by method and status',
    labelNames: ['method', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'whipcast_http_request_duration_seconds',
    help: 'HTTP request handling time',
    labelNames: ['method'] as const,
    buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  return {
    registry,
    httpRequests,
    httpDuration,
    gauge(name, help, read, label) {
      new Gauge({
        name,
        help,
        labelNames: label ? [label] : [],
        registers: [registry],
        collect() {
          const v = read();
          if (typeof v === 'number') this.set(v);
          else {
            this.reset();
            for (const [k, n] of Object.entries(v)) this.set({ [label!]: k }, n);
          }
        },
      });
    },
    counter(name, help, labels = []) {
      return new Counter({ name, help, labelNames: labels, registers: [registry] });
    },
    histogram(name, help, buckets) {
      return new Histogram({ name, help, buckets, registers: [registry] });
    },
  };
}
