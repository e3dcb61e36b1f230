// Prisma 7 on a guarded pool: @prisma/adapter-pg takes a pg.Pool instance (`instanceof pg.Pool`), so it takes ours.
// First: npx prisma generate --schema examples/prisma/schema.prisma (Prisma 7's query compiler: no engine download).
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient } from '@prisma/client'
import { Pool } from 'pg-pool-guard'

const pool = new Pool({ connectionString: process.env.DATABASE_URL, max: 10 })
const prisma = new PrismaClient({ adapter: new PrismaPg(pool) })

const [{ two }] = await prisma.$queryRaw`SELECT 1 + 1 AS two`
console.log(`prisma ok: two=${two}, guarded sockets: ${pool.guard.snapshot().length}`)
await prisma.$disconnect()
await pool.end() // the adapter does not end a pool it was given
