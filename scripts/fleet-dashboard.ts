/**
 * The fleet dashboard's picture for the README (examples/grafana/pg-pool-guard-fleet.png). Grafana is not
 * available here, so this draws the dashboard itself: it builds a real fleet (6 instances of
 * examples/prometheus/app.mjs in 3 zones, a real Prometheus with alerts.yml and fleet-alerts.yml, every
 * second), plays a fault, then evaluates every panel's own PromQL from examples/grafana/pg-pool-guard-fleet.json
 * on that Prometheus (instant queries for tables and stats, range queries over the run for time series)
 * and draws the answers as an HTML page of SVG panels, laid out by the panels' gridPos, which headless
 * Chromium screenshots. The numbers are Prometheus's; the drawing is ours, not Grafana's.
 *
 * The fault: 25 s healthy; then the primary cut off from zone a (iptables in zone a's namespace); 15 s later
 * 18 % loss on instance c-1's own link as well; the picture is taken once the partition alert (zone a) and
 * the single-instance alert (c-1) both fire. Root only; needs the chromium package.
 *
 *   node --import tsx scripts/fleet-dashboard.ts [--out examples/grafana/pg-pool-guard-fleet.png]
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startFleet } from '../src/testing/fleet'
import type { PrometheusServer } from '../src/testing/prometheus'

const root = join(__dirname, '..')
const outArg = process.argv.indexOf('--out')
const OUT = outArg > 0 ? process.argv[outArg + 1] : join(root, 'examples', 'grafana', 'pg-pool-guard-fleet.png')

interface Panel {
  type: string
  title: string
  gridPos: { x: number; y: number; w: number; h: number }
  targets: { expr: string; legendFormat: string }[]
  transformations?: { id: string; options: Record<string, string> }[]
  fieldConfig: { defaults: { unit?: string; thresholds?: { steps: { color: string; value: number | null }[] } } }
}
const dashboard = JSON.parse(readFileSync(join(root, 'examples', 'grafana', 'pg-pool-guard-fleet.json'), 'utf8')) as { title: string; panels: Panel[] }

const COLORS: Record<string, string> = { green: '#56a64b', orange: '#ff9830', red: '#e02f44' }
const PALETTE = ['#7eb26d', '#eab839', '#6ed0e0', '#ef843c', '#e24d42', '#1f78c1', '#ba43a9', '#705da0', '#508642', '#cca300', '#447ebc', '#c15c17']
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function legend(format: string, metric: Record<string, string>): string {
  const s = format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => metric[k] ?? '')
  return s || Object.entries(metric).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}=${v}`).join(', ')
}

function thresholdColor(p: Panel, v: number): string {
  const steps = p.fieldConfig.defaults.thresholds?.steps ?? [{ color: 'green', value: null }]
  let c = steps[0].color
  for (const s of steps) if (s.value !== null && v >= s.value) c = s.color
  return COLORS[c] ?? c
}

function fmt(p: Panel, v: number): string {
  const unit = p.fieldConfig.defaults.unit
  if (unit === 'percentunit') return `${Math.round(v * 100)} %`
  if (unit === 's') return v < 0.001 ? `${(v * 1e6).toFixed(0)} µs` : `${(v * 1000).toFixed(1)} ms`
  return Number.isInteger(v) ? String(v) : v.toFixed(2)
}

const W = 1560
const UNIT_H = 34

async function drawPanel(prom: PrometheusServer, p: Panel, startS: number, endS: number): Promise<string> {
  const w = (p.gridPos.w / 24) * W - 10
  const h = p.gridPos.h * UNIT_H - 10
  const body: string[] = []
  if (p.type === 'table' && p.transformations?.some((t) => t.id === 'groupingToMatrix')) {
    const o = p.transformations.find((t) => t.id === 'groupingToMatrix')!.options
    const samples = await prom.query(p.targets[0].expr)
    const rows = [...new Set(samples.map((s) => s.metric[o.rowField]))].sort()
    const cols = [...new Set(samples.map((s) => s.metric[o.columnField]))].sort()
    const cw = (w - 150) / Math.max(1, cols.length)
    body.push(`<text x="10" y="46" class="head">host \\ zone</text>`)
    cols.forEach((c, i) => body.push(`<text x="${150 + i * cw + cw / 2}" y="46" class="head" text-anchor="middle">zone ${esc(c)}</text>`))
    rows.forEach((r, j) => {
      const y = 58 + j * 52
      body.push(`<text x="10" y="${y + 32}" class="cell">${esc(r)}</text>`)
      cols.forEach((c, i) => {
        const s = samples.find((x) => x.metric[o.rowField] === r && x.metric[o.columnField] === c)
        if (!s) return
        body.push(`<rect x="${150 + i * cw + 3}" y="${y}" width="${cw - 6}" height="46" rx="3" fill="${thresholdColor(p, s.value)}"/>`)
        body.push(`<text x="${150 + i * cw + cw / 2}" y="${y + 30}" class="big" text-anchor="middle">${fmt(p, s.value)}</text>`)
      })
    })
  } else if (p.type === 'table') {
    const samples = await prom.query(p.targets[0].expr)
    if (samples.length === 0) body.push('<text x="10" y="60" class="dim">no alert pending or firing</text>')
    samples.slice(0, 7).forEach((s, j) => {
      const m = s.metric
      const where = [m.pg_pool_guard_client_zone && `zone ${m.pg_pool_guard_client_zone}`, m.instance, m.server_address && `${m.server_address}:${m.server_port}`, m.db_client_connection_pool_name].filter(Boolean).join(' · ')
      body.push(`<rect x="8" y="${40 + j * 34}" width="10" height="24" fill="${m.alertstate === 'firing' ? COLORS.red : COLORS.orange}"/>`)
      body.push(`<text x="26" y="${58 + j * 34}" class="cell">${esc(m.alertname)}  <tspan class="dim">${esc(where)} — ${esc(m.alertstate)} (${esc(m.severity ?? '')})</tspan></text>`)
    })
  } else if (p.type === 'stat') {
    const samples = (await Promise.all(p.targets.map(async (t) => (await prom.query(t.expr)).map((s) => ({ s, t }))))).flat()
    if (samples.length === 0) body.push(`<text x="${w / 2}" y="${h / 2 + 20}" class="big dim" text-anchor="middle">none</text>`)
    const sw = w / Math.max(1, samples.length)
    samples.forEach(({ s, t }, i) => {
      const color = p.fieldConfig.defaults.thresholds ? thresholdColor(p, s.value) : '#d8d9da'
      body.push(`<text x="${i * sw + sw / 2}" y="${h / 2 + 20}" class="huge" fill="${color}" text-anchor="middle">${fmt(p, s.value)}</text>`)
      body.push(`<text x="${i * sw + sw / 2}" y="${h / 2 + 48}" class="dim" text-anchor="middle">${esc(legend(t.legendFormat, s.metric))}</text>`)
    })
  } else {
    const step = Math.max(1, Math.round((endS - startS) / 200))
    const series = (await Promise.all(p.targets.map(async (t) => (await prom.queryRange(t.expr, startS, endS, step)).map((r) => ({ ...r, name: legend(t.legendFormat, r.metric) }))))).flat()
    series.sort((a, b) => a.name.localeCompare(b.name))
    const x0 = 60
    const x1 = w - 10
    const legendRows = p.type === 'state-timeline' ? 0 : Math.min(4, Math.ceil(series.length / 3))
    const y0 = 36
    const y1 = h - 12 - legendRows * 16
    const tx = (t: number): number => x0 + ((t - startS) / Math.max(1, endS - startS)) * (x1 - x0)
    if (p.type === 'state-timeline') {
      const rowH = Math.min(28, (y1 - y0) / Math.max(1, series.length))
      series.forEach((s, j) => {
        const y = y0 + j * rowH
        body.push(`<text x="${x0 + 4}" y="${y + rowH * 0.68}" class="small" fill="#fff">${esc(s.name)}</text>`)
        s.values.forEach(([t, v], k) => {
          const next = s.values[k + 1]?.[0] ?? t + step
          body.push(`<rect x="${tx(t) + 240 * 0}" y="${y + 1}" width="${Math.max(1, tx(next) - tx(t))}" height="${rowH - 2}" fill="${thresholdColor(p, v)}" opacity="0.85"/>`)
        })
        body.push(`<text x="${x0 + 4}" y="${y + rowH * 0.68}" class="small" fill="#111">${esc(s.name)}</text>`)
      })
    } else {
      const all = series.flatMap((s) => s.values.map(([, v]) => v)).filter(Number.isFinite)
      const max = Math.max(1e-9, ...all)
      const ty = (v: number): number => y1 - (v / max) * (y1 - y0)
      body.push(`<line x1="${x0}" y1="${y1}" x2="${x1}" y2="${y1}" class="axis"/><text x="${x0 - 6}" y="${y0 + 4}" class="small" text-anchor="end">${fmt(p, max)}</text><text x="${x0 - 6}" y="${y1}" class="small" text-anchor="end">0</text>`)
      series.forEach((s, i) => {
        const pts = s.values.filter(([, v]) => Number.isFinite(v)).map(([t, v]) => `${tx(t).toFixed(1)},${ty(v).toFixed(1)}`).join(' ')
        body.push(`<polyline points="${pts}" fill="none" stroke="${PALETTE[i % PALETTE.length]}" stroke-width="1.8"/>`)
      })
      series.slice(0, legendRows * 3).forEach((s, i) => {
        const lx = 10 + (i % 3) * (w / 3)
        const ly = y1 + 16 + Math.floor(i / 3) * 16
        body.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="3" fill="${PALETTE[i % PALETTE.length]}"/><text x="${lx + 14}" y="${ly - 4}" class="small">${esc(s.name.slice(0, 48))}</text>`)
      })
      if (series.length === 0) body.push(`<text x="${w / 2}" y="${h / 2}" class="dim" text-anchor="middle">no data</text>`)
    }
    body.push(`<text x="${x0}" y="${h - 1}" class="small dim">−${Math.round((endS - startS) / 60 * 10) / 10} min</text><text x="${x1}" y="${h - 1}" class="small dim" text-anchor="end">now</text>`)
  }
  const left = (p.gridPos.x / 24) * W + 5
  const top = p.gridPos.y * UNIT_H + 5
  return `<svg class="panel" style="left:${left}px;top:${top}px" width="${w}" height="${h}"><rect width="${w}" height="${h}" rx="4" class="bg"/><text x="10" y="22" class="title">${esc(p.title)}</text>${body.join('')}</svg>`
}

async function main(): Promise<void> {
  const fleet = await startFleet({
    app: join(root, 'examples', 'prometheus', 'app.mjs'),
    ruleFiles: [join(root, 'examples', 'prometheus', 'alerts.yml'), join(root, 'examples', 'prometheus', 'fleet-alerts.yml')],
  })
  const dir = mkdtempSync(join(tmpdir(), 'pgg-fleet-shot-'))
  try {
    const startS = Date.now() / 1000
    console.log('fleet ready; 25 s healthy')
    await new Promise((r) => setTimeout(r, 25_000))
    const cut = await fleet.cut('a', { zones: ['a'] })
    console.log(`${cut.description}; in 15 s, 18 % loss on c-1`)
    await new Promise((r) => setTimeout(r, 15_000))
    const loss = await fleet.loss('c-1', 0.18)
    const deadline = Date.now() + 60_000
    for (;;) {
      const firing = (await fleet.alerts()).filter((a) => a.state === 'firing').map((a) => a.labels.alertname)
      if (firing.includes('PgPoolGuardFleetZonePartition') && firing.includes('PgPoolGuardFleetInstanceLink')) break
      if (Date.now() > deadline) throw new Error(`the partition and instance-link alerts did not both fire within 60 s (firing: ${firing.join(', ')})`)
      await new Promise((r) => setTimeout(r, 500))
    }
    await new Promise((r) => setTimeout(r, 5000))
    const endS = Date.now() / 1000
    const panels = await Promise.all(dashboard.panels.map((p) => drawPanel(fleet.prometheus, p, startS, endS)))
    await cut.remove()
    await loss.remove()
    const height = Math.max(...dashboard.panels.map((p) => (p.gridPos.y + p.gridPos.h) * UNIT_H)) + 60
    const html = `<!doctype html><meta charset="utf-8"><style>
      body{margin:0;background:#111217;font-family:"DejaVu Sans",sans-serif;color:#d8d9da}
      h1{font-size:17px;margin:12px 14px 2px} p{font-size:12px;color:#8e8e8e;margin:0 14px 8px}
      #grid{position:relative;width:${W}px;height:${height - 60}px;margin-left:10px}
      .panel{position:absolute} .bg{fill:#181b1f;stroke:#2c3235} .title{fill:#d8d9da;font-size:13px;font-weight:bold}
      .head{fill:#9fa7b3;font-size:12px} .cell{fill:#d8d9da;font-size:13px} .big{fill:#fff;font-size:17px;font-weight:bold}
      .huge{font-size:40px;font-weight:bold} .small{fill:#9fa7b3;font-size:10px} .dim{fill:#8e8e8e;font-size:12px} .axis{stroke:#2c3235}
    </style><h1>${esc(dashboard.title)}</h1>
    <p>Drawn by scripts/fleet-dashboard.ts from the dashboard JSON's own queries, answered by a real Prometheus scraping 6 instances of examples/prometheus/app.mjs in 3 zones every second (not rendered by Grafana). Fault: the primary 198.18.2.1 cut off from zone a, then 18 % loss on instance c-1's own link.</p>
    <div id="grid">${panels.join('')}</div>`
    const htmlFile = join(dir, 'fleet.html')
    writeFileSync(htmlFile, html)
    execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', `--user-data-dir=${join(dir, 'profile')}`, '--hide-scrollbars', `--window-size=${W + 20},${height}`, `--screenshot=${OUT}`, `file://${htmlFile}`], { stdio: 'pipe' })
    console.log(`wrote ${OUT}`)
  } finally {
    await fleet.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err: Error) => {
  console.error(err.message)
  process.exit(1)
})
