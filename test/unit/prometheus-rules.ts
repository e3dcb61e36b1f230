/**
 * What the two rule-file tests share (alerts.test.ts, fleet-alerts.test.ts): promtool run on the examples,
 * and every series and label name the Prometheus exporter can make of semconv.ts.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import * as semconv from '../../src/telemetry/semconv'
import type { InstrumentSpec } from '../../src/telemetry/semconv'

/** examples/prometheus: the rule files, their promtool tests and the Prometheus configs. */
export const dir = join(__dirname, '..', '..', 'examples', 'prometheus')
/** Debian's prometheus package installs it as /usr/bin/promtool; PROMTOOL points elsewhere. */
const PROMTOOL = process.env.PROMTOOL ?? 'promtool'

/** Why promtool cannot run here (printed as a SKIP line for `testFile`), or undefined. */
export function promtoolMissing(testFile: string): string | undefined {
  try {
    execFileSync(PROMTOOL, ['--version'], { stdio: 'ignore' })
    return undefined
  } catch {
    const why = `${PROMTOOL} is not installed (Debian package prometheus: /usr/bin/promtool; PROMTOOL names another)`
    console.log(`# SKIP ${testFile} (promtool): ${why}`)
    return why
  }
}

/** promtool with `args` in examples/prometheus; fails the test with its output unless it succeeds. */
export function promtool(...args: string[]): string {
  const r = spawnSync(PROMTOOL, args, { cwd: dir, encoding: 'utf8' })
  const out = `${r.stdout}${r.stderr}`
  assert.equal(r.status, 0, `promtool ${args.join(' ')} failed:\n${out}`)
  return out
}

/** What @opentelemetry/exporter-prometheus makes of a name: dots to underscores, no unit suffix. */
export const prom = (name: string): string => name.replace(/[^a-zA-Z0-9_]/g, '_')

/** Every series name the exporter can produce from semconv.ts, and every label name. */
export function exposable(): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>()
  const labels = new Set<string>()
  for (const [key, value] of Object.entries(semconv)) {
    if (key.startsWith('ATTR_') && typeof value === 'string') labels.add(prom(value))
    if (typeof value !== 'object' || value === null) continue
    for (const spec of Object.values(value as Record<string, InstrumentSpec>)) {
      if (typeof spec?.name !== 'string') continue
      const n = prom(spec.name)
      if (spec.kind === 'counter') metrics.add(`${n}_total`)
      else if (spec.kind === 'histogram') for (const s of ['_bucket', '_count', '_sum']) metrics.add(n + s)
      else metrics.add(n)
    }
  }
  return { metrics, labels }
}
