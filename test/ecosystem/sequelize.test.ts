/**
 * Sequelize 6 pools pg.Clients itself (sequelize-pool), building each with `new dialectModule.Client(...)`:
 * given pg-pool-guard as its `dialectModule`, every client it builds is a standalone guarded client.
 * examples/sequelize.
 */
import { QueryTypes, Sequelize } from 'sequelize'
import * as pgg from '../../src/index'
import { standaloneSuite } from './standalone-suite'

standaloneSuite({
  name: 'Sequelize',
  file: 'test/ecosystem/sequelize.test.ts',
  host: '127.0.25.1',
  example: 'examples/sequelize/app.mjs',
  exampleOk: 'sequelize',
  // Measured with plain pg too (3-4 of 20 tries): the 57P01 ErrorResponse rejects the query, Sequelize
  // releases the connection in a `finally`, and its validate() checks only `_invalid`, which the client's
  // 'error' event sets when the socket closes a moment later; a query acquiring it in between fails with
  // "Connection terminated unexpectedly".
  reusesKilledConnection: 'Sequelize puts a connection killed under a query back in its pool until pg hears the socket close',
  async open(config) {
    const sequelize = new Sequelize({
      dialect: 'postgres',
      dialectModule: pgg,
      host: config.host as string,
      port: config.port as number,
      username: config.user as string,
      password: config.password as string,
      database: config.database as string,
      dialectOptions: { application_name: config.application_name },
      pool: { max: 5 },
      logging: false,
    })
    return {
      query: (text) => sequelize.query(text, { type: QueryTypes.SELECT }) as Promise<Record<string, unknown>[]>,
      close: () => sequelize.close(),
    }
  },
})
