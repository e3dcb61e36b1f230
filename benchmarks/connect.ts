/**
 * What knowing the server costs, beside pg.Pool in the same run:
 *   1. a new connection: pool.connect() on an empty pool (TCP, SCRAM login, and for the guard its one
 *      identity query) then the first SELECT 1, released with destroy so the next one is new too;
 *   2. an address check (the guard's fresh connection to a configured address: login, identity and
 *      standbys, closed), called directly;
 *   3. the same pool doing SELECT 1 afterwards: no round trip of the guard per query (checked by counting
 *      ReadyForQuery messages).
 * Client CPU is process.cpuUsage() over the measured loop, per connection.
 *
 *   node --import tsx benchmarks/connect.ts [--smoke]
 */
import pg from 'pg'
import { Pool } from '../src/index'
import { startCluster } from '../src/testing/cluster'
import { checkAddress } from '../src/topology/address-check'
import { IdentityReader } from '../src/topology/identity'
import { runMain } from './lib/main'

const smoke = process.argv.includes('--smoke')
const N = smoke ? 10 : 300

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]
const ms = (x: number): string => `${x.toFixed(2)} ms`

async function newConnections(pool: pg.Pool, n: number): Promise<{ wall: number[]; cpuUs: number }> {
  const wall: number[] = []
  const cpu = process.cpuUsage()
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const client = await pool.connect()
    await client.query('SELECT 1')
    wall.push(performance.now() - t)
    client.release(true)
  }
  const used = process.cpuUsage(cpu)
  return { wall, cpuUs: (used.user + used.system) / n }
}

async function main(): Promise<void> {
  const c = await startCluster({ primaryHost: '127.0.3.2' })
  try {
    const config = { ...c.config, max: 1 }
    const plain = new pg.Pool(config)
    const guarded = new Pool({ ...config, guard: { addressCheckIntervalMs: 0 } })
    // Warm both (code paths, the server's catalog caches for these queries).
    await newConnections(plain, 5)
    await newConnections(guarded, 5)
    const rounds = smoke ? 1 : 5
    const res = { plain: { wall: [] as number[], cpu: [] as number[] }, guarded: { wall: [] as number[], cpu: [] as number[] } }
    for (let r = 0; r < rounds; r++) {
      for (const [name, pool] of [['plain', plain], ['guarded', guarded]] as const) {
        const x = await newConnections(pool, Math.ceil(N / rounds))
        res[name].wall.push(...x.wall)
        res[name].cpu.push(x.cpuUs)
      }
    }
    console.log(`New connections: pool.connect() on an empty pool + SELECT 1, released with destroy; ${N} per pool, alternating in ${rounds} rounds.\n`)
    console.log('| pool | connect + first query p50 | p99 | client CPU per connection |')
    console.log('| --- | --- | --- | --- |')
    for (const [label, r] of [['pg.Pool', res.plain], ['pg-pool-guard (identity after login)', res.guarded]] as const) {
      console.log(`| ${label} | ${ms(median(r.wall))} | ${ms(p99(r.wall))} | ${(median(r.cpu) / 1000).toFixed(2)} ms |`)
    }
    const extra = median(res.guarded.wall) - median(res.plain.wall)
    console.log(`\nThe identity query adds ${ms(extra)} to a new connection's p50 (${((extra / median(res.plain.wall)) * 100).toFixed(0)} %); nothing per query after it.`)

    // Address checks, called directly.
    const reader = new IdentityReader()
    const checks = smoke ? 5 : 100
    const cpu = process.cpuUsage()
    const t = performance.now()
    for (let i = 0; i < checks; i++) {
      const r = await checkAddress({ ...c.config }, reader, 5000)
      if (!r.identity) throw new Error(`address check failed: ${r.error}`)
    }
    const perCheck = (performance.now() - t) / checks
    const used = process.cpuUsage(cpu)
    const cpuPerCheck = (used.user + used.system) / checks / 1000
    console.log(`\nAn address check (new connection, SCRAM login, identity and standbys, closed): ${ms(perCheck)} wall, ${cpuPerCheck.toFixed(2)} ms of client CPU each; at the default addressCheckIntervalMs (2 s) that is ${((cpuPerCheck / 2000) * 100).toFixed(3)} % of a core per configured address the pool holds sockets to (skipped while the pool's own logins there are as recent).`)

    // No round trip per query: ReadyForQuery messages on one client over 1000 queries.
    const one = (await guarded.connect()) as pg.PoolClient & { connection: { on(e: string, f: () => void): void } }
    let rfq = 0
    one.connection.on('readyForQuery', () => rfq++)
    for (let i = 0; i < 1000; i++) await one.query('SELECT 1')
    one.release()
    console.log(`\n1000 queries on one guarded client: ${rfq} round trips (ReadyForQuery messages).`)
    await plain.end()
    await guarded.end()
  } finally {
    await c.stop()
  }
}

runMain(main)
