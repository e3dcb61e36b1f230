// The same package from a CommonJS consumer (module nodenext, .cts).
import pgg = require('pg-pool-guard')
import testing = require('pg-pool-guard/testing')

export const pool = new pgg.Pool({ guard: { stallMs: 1000 } })
export const kit: typeof testing.startCluster = testing.startCluster
