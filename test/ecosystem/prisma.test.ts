/**
 * Prisma 7 with @prisma/adapter-pg: `new PrismaPg(pool)` keeps a pg.Pool instance it is given (`instanceof
 * pg.Pool`), so the guarded pool carries every query. Prisma 7's client runs its query compiler (WebAssembly,
 * shipped in the package): `prisma generate` needs no engine, but the CLI still tries to download the schema
 * engine (used by migrate, not by generate) unless PRISMA_SCHEMA_ENGINE_BINARY names one, so this file names
 * a stand-in. examples/prisma.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { PrismaPg } from '@prisma/adapter-pg'
import { Pool } from '../../src/index'
import { ecosystemSuite } from './suite'

const root = join(__dirname, '..', '..')

function generate(): string | undefined {
  const res = spawnSync(process.execPath, [join(root, 'node_modules', 'prisma', 'build', 'index.js'), 'generate', '--schema', 'examples/prisma/schema.prisma'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1' },
  })
  if (res.status === 0) return undefined
  return `prisma generate failed (${res.status}): ${(res.stderr || res.stdout).trim().split('\n').slice(-3).join(' / ')}`
}

interface Prisma {
  $queryRawUnsafe<T = unknown>(sql: string): Promise<T>
  $disconnect(): Promise<void>
  item: { create(a: { data: { name: string } }): Promise<{ id: number; name: string }>; count(): Promise<number> }
}

async function client(pool: Pool): Promise<Prisma> {
  // Imported after generate: @prisma/client re-exports the generated client.
  const { PrismaClient } = (await import('@prisma/client')) as unknown as { PrismaClient: new (o: { adapter: PrismaPg }) => Prisma }
  return new PrismaClient({ adapter: new PrismaPg(pool) })
}

const skip = generate()
const suite = ecosystemSuite({
  name: 'Prisma',
  file: 'test/ecosystem/prisma.test.ts',
  host: '127.0.6.6',
  skip,
  example: 'examples/prisma/app.mjs',
  async open(config) {
    const pool = new Pool({ ...config, max: 5 })
    const prisma = await client(pool)
    return {
      pool,
      query: (text) => prisma.$queryRawUnsafe<Record<string, unknown>[]>(text),
      async close() {
        await prisma.$disconnect()
        await pool.end() // the adapter does not end a pool it was given
      },
    }
  },
})

describe('Prisma models on a guarded pool', { skip }, () => {
  it('create and count run through the guarded pool', async () => {
    await suite.cluster.get().primary.query('CREATE TABLE IF NOT EXISTS "Item" (id serial PRIMARY KEY, name text NOT NULL)')
    const pool = new Pool({ ...suite.cluster.get().config, max: 2 })
    const prisma = await client(pool)
    try {
      const item = await prisma.item.create({ data: { name: 'guarded' } })
      assert.equal(item.name, 'guarded')
      assert.equal(await prisma.item.count(), 1)
      assert.ok(pool.guard.snapshot().length >= 1)
    } finally {
      await prisma.$disconnect()
      await pool.end()
    }
  })
})
