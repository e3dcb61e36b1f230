/**
 * The options table (src/options.ts GUARD_DEFAULTS_TABLE) is the one place an option's default, unit, check
 * and reason live (issue 20); the README's options table and the JSDoc `@default`s are held to it here.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Default } from '../../src/defaults'
import { HEALTH_DEFAULTS_TABLE } from '../../src/judge/health-rules'
import { REPLICATION_DEFAULTS } from '../../src/judge/replication-rules'
import { ROUTING_HOLD } from '../../src/judge/routing-rules'
import { GUARD_DEFAULTS, GUARD_DEFAULTS_TABLE, type OptionRow, resolveGuardOptions } from '../../src/options'

const ROOT = join(__dirname, '../..')
const ROWS = Object.entries(GUARD_DEFAULTS_TABLE) as [string, OptionRow<unknown>][]

/** A value as the README and the JSDoc write it: 5000, 0.1, true, 'any', {}. */
function written(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : typeof v === 'object' ? JSON.stringify(v) : String(v)
}

/** The default as the README shows it: the row's `shown`, else its value. */
function shownDefault(row: OptionRow<unknown>): string {
  return row.shown ?? written(row.value)
}

interface ReadmeRow {
  option: string
  default: string
  unit: string
  what: string
}

/** The `| option | default | unit | what |` table under "## Options", code spans unwrapped (backticks dropped). */
function readmeOptions(): ReadmeRow[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const start = readme.search(/^## Options\b/m)
  assert.ok(start >= 0, 'README has an "## Options" section')
  const end = readme.slice(start + 1).search(/^## /m)
  const section = readme.slice(start, end < 0 ? undefined : start + 1 + end).split('\n')
  const header = section.findIndex((l) => /^\|\s*option\s*\|\s*default\s*\|\s*unit\s*\|\s*what\s*\|\s*$/.test(l))
  assert.ok(header >= 0, 'the Options section has a | option | default | unit | what | table')
  assert.match(section[header + 1], /^\|(\s*-+\s*\|){4}\s*$/)
  const rows: ReadmeRow[] = []
  for (const line of section.slice(header + 2)) {
    if (!line.startsWith('|')) break
    const cells = line
      .slice(1, line.trimEnd().endsWith('|') ? line.trimEnd().length - 1 : undefined)
      .split(/(?<!\\)\|/)
      .map((c) => c.replace(/\\\|/g, '|').replace(/`/g, '').trim())
    assert.equal(cells.length, 4, `README options row has 4 cells: ${line}`)
    rows.push({ option: cells[0], default: cells[1], unit: cells[2], what: cells[3] })
  }
  return rows
}

/** `@default ...` of each field of GuardOptions, from its JSDoc. */
function jsdocDefaults(): Map<string, string> {
  const source = readFileSync(join(ROOT, 'src/options.ts'), 'utf8')
  const body = source.slice(source.indexOf('export interface GuardOptions {'))
  const out = new Map<string, string>()
  for (const m of body.slice(0, body.indexOf('\n}\n')).matchAll(/\/\*\*([\s\S]*?)\*\/\s*\n\s*(\w+)\?:/g)) {
    const d = /@default\s+([\s\S]*?)\s*$/.exec(m[1].replace(/\n\s*\*/g, ' '))
    if (d) out.set(m[2], d[1])
  }
  return out
}

describe('the options table', () => {
  it('is where GUARD_DEFAULTS and resolveGuardOptions come from', () => {
    assert.deepEqual(Object.keys(GUARD_DEFAULTS), Object.keys(GUARD_DEFAULTS_TABLE))
    for (const [key, row] of ROWS) assert.equal(GUARD_DEFAULTS[key as keyof typeof GUARD_DEFAULTS], row.value, key)
    assert.deepEqual(resolveGuardOptions({}), GUARD_DEFAULTS)
  })

  it('every row has a reason and passes its own check', () => {
    for (const [key, row] of ROWS) {
      assert.ok(row.why.length > 40, `${key}: why`)
      assert.doesNotThrow(() => row.check(key, row.value), key)
      if (row.shown !== undefined && row.value !== null) {
        assert.ok(row.shown.startsWith(written(row.value)), `${key}: shown '${row.shown}' starts with its value ${written(row.value)}`)
      }
    }
  })

  it("the README's options table matches it: every option, the same default and unit, nothing extra", () => {
    const readme = readmeOptions()
    const byName = new Map(readme.map((r) => [r.option, r]))
    assert.equal(byName.size, readme.length, 'no option twice in the README')
    assert.deepEqual([...byName.keys()].sort(), ROWS.map(([k]) => k).sort(), 'the same options')
    for (const [key, row] of ROWS) {
      const r = byName.get(key)!
      assert.equal(r.default, shownDefault(row), `${key}: default`)
      assert.equal(r.unit, row.unit, `${key}: unit`)
      assert.ok(r.what.length > 0, `${key}: what`)
    }
  })

  it("every field of GuardOptions has a JSDoc @default that agrees with the table", () => {
    const docs = jsdocDefaults()
    assert.deepEqual([...docs.keys()].sort(), ROWS.map(([k]) => k).sort())
    for (const [key, row] of ROWS) {
      if (row.value !== null) assert.ok(docs.get(key)!.startsWith(written(row.value)), `${key}: @default ${docs.get(key)} vs ${written(row.value)}`)
    }
  })

  it('shares its row shape with the health, routing and replication defaults', () => {
    const tables: Record<string, Record<string, Default<unknown>>> = {
      health: HEALTH_DEFAULTS_TABLE,
      routing: { hold: ROUTING_HOLD },
      replication: REPLICATION_DEFAULTS,
    }
    for (const [name, table] of Object.entries(tables)) {
      for (const [key, row] of Object.entries(table)) {
        assert.equal(typeof row.value, 'number', `${name}.${key}`)
        assert.ok(row.unit.length > 0 && row.why.length > 40, `${name}.${key}`)
      }
    }
  })
})
