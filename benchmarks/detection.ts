/**
 * Detection time for a blackholed PostgreSQL (iptables DROP, both directions), in one run:
 *   - in use: 4 queries sent right after the fault; time until each settles (and how);
 *   - idle: 4 idle pooled sockets at the fault; time until the pool has dropped them.
 * Compared: pg-pool-guard (defaults), pg.Pool (defaults), pg.Pool tuned (keepAlive: true,
 * keepAliveInitialDelayMillis: 1000, query_timeout: 5000). Needs root (iptables).
 *
 *   node --import tsx benchmarks/detection.ts [--smoke]
 */
import pg from 'pg'
import { Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'
import { blackhole, kernelFaultsUnavailable } from '../src/testing/kernel-faults'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')
const capMs = smoke ? 2_000 : 20_000

type Make = (config: pg.PoolConfig) => pg.Pool
const kinds: [string, Make][] = [
  ['pg-pool-guard (defaults)', (c) => new Pool(c)],
  ['pg.Pool (defaults)', (c) => new pg.Pool(c)],
  ['pg.Pool keepAlive 1 s + query_timeout 5 s', (c) => new pg.Pool({ ...c, keepAlive: true, keepAliveInitialDelayMillis: 1000, query_timeout: 5000 })],
]

const fmt = (ms: number | undefined): string => (ms === undefined ? `> ${capMs / 1000} s (still hung)` : `${(ms / 1000).toFixed(2)} s`)

async function main(): Promise<void> {
  const why = kernelFaultsUnavailable()
  if (why) {
    console.log(`skipped: ${why}`)
    return
  }
  const cluster = await startCluster({ primaryHost: '127.0.0.32' })
  const { host } = cluster.primary
  const lines: string[] = []
  try {
    for (const [name, make] of kinds) {
      // In use.
      {
        const pool = make({ ...cluster.config, max: 4 })
        pool.on('error', () => {})
        await Promise.all(Array.from({ length: 4 }, () => pool.query('SELECT 1')))
        const fault = await blackhole(host, { port: cluster.port })
        const started = Date.now()
        const outcomes: { ms?: number; how: string }[] = []
        await Promise.all(
          Array.from({ length: 4 }, () =>
            Promise.race([
              pool.query('SELECT 1').then(
                () => outcomes.push({ ms: Date.now() - started, how: 'ok' }),
                (e: Error & { code?: string }) => outcomes.push({ ms: Date.now() - started, how: e.code ?? e.message })
              ),
              new Promise<void>((r) => setTimeout(r, capMs)).then(() => {
                outcomes.push({ how: 'hung' })
              }),
            ])
          )
        )
        await fault.remove()
        const worst = outcomes.some((o) => o.ms === undefined) ? undefined : Math.max(...outcomes.map((o) => o.ms!))
        lines.push(`| ${name} | in use: 4 queries | ${fmt(worst)} | ${[...new Set(outcomes.map((o) => o.how))].join(', ')} |`)
        void pool.end().catch(() => {})
      }
      // Idle.
      {
        const pool = make({ ...cluster.config, max: 4, idleTimeoutMillis: 0 })
        pool.on('error', () => {})
        const held = await Promise.all(Array.from({ length: 4 }, () => pool.connect()))
        for (const c of held) c.release()
        const fault = await blackhole(host, { port: cluster.port })
        const started = Date.now()
        let removed = 0
        const dropped = new Promise<number>((resolve) =>
          pool.on('remove', () => {
            if (++removed === 4) resolve(Date.now() - started)
          })
        )
        const ms = await Promise.race([dropped, new Promise<undefined>((r) => setTimeout(() => r(undefined), capMs))])
        await fault.remove()
        lines.push(`| ${name} | idle: 4 sockets | ${fmt(ms)} | ${removed}/4 dropped |`)
        void pool.end().catch(() => {})
      }
    }
  } finally {
    await cluster.stop()
  }
  console.log('Blackhole (iptables DROP) detection, measured in one run\n')
  console.log('| pool | scenario | time to the last coded error / drop | outcome |')
  console.log('| --- | --- | --- | --- |')
  for (const l of lines) console.log(l)
}

runMain(main)
