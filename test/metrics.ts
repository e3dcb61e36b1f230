/** An in-memory OpenTelemetry metric reader for tests: collect on demand, look points up by name and attributes. */
import { type Attributes, ValueType } from '@opentelemetry/api'
import { DataPointType, MeterProvider, MetricReader, type MetricData, type ResourceMetrics } from '@opentelemetry/sdk-metrics'

export class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export interface Collected {
  metrics: MetricData[]
  /** The metric with this name (throws if absent). */
  metric(name: string): MetricData
  /** The value of the point matching every given attribute (a histogram: its count); undefined if none. */
  value(name: string, attrs?: Attributes): number | undefined
  /** Sum over points matching the attributes. */
  sum(name: string, attrs?: Attributes): number
  /** Histogram sum (seconds) of the matching point. */
  histogramSum(name: string, attrs?: Attributes): number | undefined
}

export function meterProvider(): { provider: MeterProvider; reader: TestReader; collect(): Promise<Collected> } {
  const reader = new TestReader()
  const provider = new MeterProvider({ readers: [reader] })
  return {
    provider,
    reader,
    async collect() {
      const { resourceMetrics } = await reader.collect()
      return collected(resourceMetrics)
    },
  }
}

function matches(point: { attributes: Attributes }, attrs: Attributes = {}): boolean {
  return Object.entries(attrs).every(([k, v]) => point.attributes[k] === v)
}

function collected(rm: ResourceMetrics): Collected {
  const metrics = rm.scopeMetrics.flatMap((s) => s.metrics)
  const metric = (name: string): MetricData => {
    const m = metrics.find((x) => x.descriptor.name === name)
    if (!m) throw new Error(`no metric ${name}; have ${metrics.map((x) => x.descriptor.name).join(', ')}`)
    return m
  }
  const points = (name: string, attrs?: Attributes) => (metric(name).dataPoints as { attributes: Attributes; value: unknown }[]).filter((p) => matches(p, attrs))
  const num = (m: MetricData, v: unknown): number => (m.dataPointType === DataPointType.HISTOGRAM ? (v as { count: number }).count : (v as number))
  return {
    metrics,
    metric,
    value(name, attrs) {
      const p = points(name, attrs)[0]
      return p === undefined ? undefined : num(metric(name), p.value)
    },
    sum(name, attrs) {
      const m = metric(name)
      return points(name, attrs).reduce((acc, p) => acc + num(m, p.value), 0)
    },
    histogramSum(name, attrs) {
      const p = points(name, attrs)[0]
      return p === undefined ? undefined : (p.value as { sum: number }).sum
    },
  }
}

export { DataPointType, ValueType }
