/**
 * TypeORM builds its own pool with `new options.driver.Pool(...)`: given pg with our Pool, the pool it builds
 * is guarded (TypeORM has no option that takes a pool instance). examples/typeorm.
 */
import pg from 'pg'
import { DataSource } from 'typeorm'
import { Pool } from '../../src/index'
import { ecosystemSuite } from './suite'

ecosystemSuite({
  name: 'TypeORM',
  file: 'test/ecosystem/typeorm.test.ts',
  host: '127.0.6.4',
  example: 'examples/typeorm/app.mjs',
  async open(config) {
    const ds = new DataSource({
      type: 'postgres',
      host: config.host as string,
      port: config.port as number,
      username: config.user as string,
      password: config.password as string,
      database: config.database as string,
      applicationName: config.application_name as string,
      poolSize: 5,
      driver: { ...pg, Pool },
    })
    await ds.initialize()
    const pool = (ds.driver as unknown as { master: unknown }).master
    if (!(pool instanceof Pool)) throw new Error('TypeORM did not build its pool with the Pool it was given')
    return {
      pool,
      query: (text) => ds.query(text),
      close: () => ds.destroy(),
    }
  },
})
