/**
 * The design's layering, checked: no import cycle between src/ folders (the files at src/'s root count as
 * modules of their own: index and types on top, errors, options, defaults and verdict-kinds as leaves).
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { describe, it } from 'node:test'

const SRC = join(__dirname, '../../src')

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** A folder of src/, or a root file's own name. */
function unit(path: string): string {
  const rel = relative(SRC, path)
  return dirname(rel) === '.' ? rel.replace(/\.ts$/, '') : dirname(rel)
}

describe('layering', () => {
  it('no import cycle between src/ folders', () => {
    const edges = new Map<string, Set<string>>()
    for (const f of files(SRC)) {
      for (const m of readFileSync(f, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        let target = normalize(join(dirname(f), m[1]))
        target = statSync(target, { throwIfNoEntry: false })?.isDirectory() ? join(target, 'index.ts') : `${target}.ts`
        const [a, b] = [unit(f), unit(target)]
        if (a !== b) (edges.get(a) ?? edges.set(a, new Set()).get(a)!).add(b)
      }
    }
    const reaches = (from: string, to: string): boolean => {
      const seen = new Set<string>()
      const stack = [from]
      while (stack.length) {
        const x = stack.pop()!
        if (x === to) return true
        for (const n of edges.get(x) ?? []) if (!seen.has(n)) stack.push((seen.add(n), n))
      }
      return false
    }
    const cycles = [...edges].flatMap(([a, bs]) => [...bs].filter((b) => reaches(b, a)).map((b) => `${a} -> ${b}`))
    assert.deepEqual(cycles, [])
  })
})
