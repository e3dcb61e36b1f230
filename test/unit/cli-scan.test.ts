/** scan's process names, from a fixture /proc: argv[0], not the main thread's name (Node 24+ renames it). */
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { processName } from '../../src/cli/scan'

const proc = mkdtempSync(join(tmpdir(), 'pgg-proc-'))
function pid(n: number, files: { cmdline?: string; comm?: string; exe?: string }): number {
  mkdirSync(join(proc, String(n)))
  if (files.cmdline !== undefined) writeFileSync(join(proc, String(n), 'cmdline'), files.cmdline)
  if (files.comm !== undefined) writeFileSync(join(proc, String(n), 'comm'), `${files.comm}\n`)
  if (files.exe !== undefined) symlinkSync(files.exe, join(proc, String(n), 'exe'))
  return n
}

describe('scan: process names', () => {
  it('Node 24 and 26 name their main thread MainThread / node-MainThread: the name is argv[0]\'s base name', () => {
    assert.equal(processName(pid(1, { cmdline: '/opt/node24/bin/node\0server.js\0', comm: 'MainThread' }), proc), 'node')
    assert.equal(processName(pid(2, { cmdline: 'node\0--import\0tsx\0', comm: 'node-MainThread' }), proc), 'node')
  })
  it('never the other arguments: they may hold a connection string with its password', () => {
    assert.equal(processName(pid(3, { cmdline: '/usr/bin/psql\0postgresql://u:Pw-123@h/db\0', comm: 'psql' }), proc), 'psql')
  })
  it('a title set by the process (one string with spaces), a login shell', () => {
    assert.equal(processName(pid(4, { cmdline: 'postgres: checkpointer ', comm: 'postgres' }), proc), 'postgres:')
    assert.equal(processName(pid(5, { cmdline: '-bash\0', comm: 'bash' }), proc), 'bash')
  })
  it('falls back to /proc/PID/exe, then comm (kernel threads have an empty cmdline)', () => {
    assert.equal(processName(pid(6, { cmdline: '', exe: '/usr/local/bin/pgbouncer', comm: 'pgb-thread' }), proc), 'pgbouncer')
    assert.equal(processName(pid(7, { cmdline: '', comm: 'kworker/0:1' }), proc), 'kworker/0:1')
    assert.equal(processName(8, proc), null)
  })
})
