/** doctor's pg-copies check, on small node_modules trees made in a temp dir (real files, no mock fs). */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { findPgCopies, pgCopiesFinding } from '../../src/cli/pg-copies'

const root = join(__dirname, '..', '..')
const made: string[] = []
after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })))

function pkg(dir: string, name: string, version: string): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version }))
}

function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'pgg-pg-copies-'))
  made.push(dir)
  return dir
}

describe('doctor: copies of pg', () => {
  it('one copy (and an npm: alias of pg under another name) is fine', () => {
    const p = project()
    pkg(join(p, 'node_modules', 'pg'), 'pg', '8.23.1')
    pkg(join(p, 'node_modules', 'pg-lowest'), 'pg', '8.11.0')
    pkg(join(p, 'node_modules', 'pg-pool'), 'pg-pool', '3.14.0')
    assert.deepEqual(findPgCopies(p), [{ path: 'node_modules/pg', version: '8.23.1', nestedUnder: null }])
    assert.equal(pgCopiesFinding(findPgCopies(p)), null)
  })

  it('a nested second copy under a scoped package is found, with who needs it; a symlinked pg counts', () => {
    const p = project()
    const real = project()
    pkg(real, 'pg', '8.15.6')
    mkdirSync(join(p, 'node_modules'), { recursive: true })
    symlinkSync(real, join(p, 'node_modules', 'pg'), 'dir')
    pkg(join(p, 'node_modules', '@prisma', 'adapter-pg'), '@prisma/adapter-pg', '7.10.1')
    pkg(join(p, 'node_modules', '@prisma', 'adapter-pg', 'node_modules', 'pg'), 'pg', '8.23.1')
    const copies = findPgCopies(p).sort((a, b) => a.path.localeCompare(b.path))
    assert.deepEqual(copies, [
      { path: 'node_modules/@prisma/adapter-pg/node_modules/pg', version: '8.23.1', nestedUnder: '@prisma/adapter-pg' },
      { path: 'node_modules/pg', version: '8.15.6', nestedUnder: null },
    ])
    const f = pgCopiesFinding(copies)!
    assert.equal(f.code, 'PG_COPIES')
    assert.equal(f.severity, 'risky')
    assert.match(f.message, /2 copies of pg are installed: .*8\.23\.1 \(for @prisma\/adapter-pg\)/)

    // The CLI, run in that project: the finding, exit code 1 (needs dist/).
    const res = spawnSync(process.execPath, [join(root, 'dist', 'cli', 'main.js'), 'doctor', '--json', 'postgresql://app@10.0.0.1,10.0.0.2/shop?target_session_attrs=read-write&connect_timeout=5'], { cwd: p, encoding: 'utf8' })
    const report = JSON.parse(res.stdout) as { findings: { code: string }[] }
    assert.ok(report.findings.some((x) => x.code === 'PG_COPIES'), res.stdout + res.stderr)
    assert.equal(res.status, 1)
  })
})
