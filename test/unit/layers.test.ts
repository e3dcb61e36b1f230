/**
 * The design's layering, checked: no import cycle between src/ folders (the files at src/'s root count as
 * modules of their own: index and types on top, errors, options, defaults and verdict-kinds as leaves), and
 * none between files either, but for the two kept on purpose (FILE_CYCLES_KEPT).
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

/**
 * File cycles kept on purpose: the kernel port loads its Linux implementation lazily (require), and the
 * doctor and its pg-copies check share the Finding type.
 */
const FILE_CYCLES_KEPT = ['cli/doctor.ts -> cli/pg-copies.ts', 'cli/pg-copies.ts -> cli/doctor.ts', 'kernel/linux.ts -> kernel/port.ts', 'kernel/port.ts -> kernel/linux.ts']

/** Every import between src/ files (`from '...'` and `require('...')`), as edges between `key`s, and the edges in a cycle. */
function cyclesOf(key: (file: string) => string): string[] {
  const edges = new Map<string, Set<string>>()
  for (const f of files(SRC)) {
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:from |require\()'(\.[^']+)'/g)) {
      let target = normalize(join(dirname(f), m[1]))
      target = statSync(target, { throwIfNoEntry: false })?.isDirectory() ? join(target, 'index.ts') : `${target}.ts`
      const [a, b] = [key(f), key(target)]
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
  return [...edges].flatMap(([a, bs]) => [...bs].filter((b) => reaches(b, a)).map((b) => `${a} -> ${b}`)).sort()
}

describe('layering', () => {
  it('no import cycle between src/ folders', () => {
    assert.deepEqual(cyclesOf(unit), [])
  })

  it('no import cycle between src/ files, but the two kept on purpose', () => {
    assert.deepEqual(cyclesOf((f) => relative(SRC, f)), [...FILE_CYCLES_KEPT].sort())
  })
})
