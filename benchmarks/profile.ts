/**
 * Where the client's CPU goes on the hot path (issue 20): a V8 CPU profile of 8 workers looping
 * `pool.query('SELECT 1')` (pool max 8) through the built package, and the share of the client's non-idle
 * samples whose self time is in the package's own frames (target: ≤ 1 %). Beside it, in the same run, plain
 * pg.Pool: there the package's share must be ~0 (the noise floor) and it gives the samples/s of the same
 * workload without the guard.
 *
 *   node --import tsx benchmarks/profile.ts [--smoke] [--seconds N] [--rounds N] [--interval-us N]
 *                                            [--profiler inspector|cpu-prof] [--no-inlining-check] [--no-pin]
 *
 * What runs where. This process (tsx) starts PostgreSQL with the kit on 127.0.55.2 and does no measured work:
 * each run is a child process (benchmarks/lib/profile-child.mjs, plain JavaScript, NODE_OPTIONS cleared) that
 * requires `dist/index.js` and pg, warms its pool up (2 s), then profiles the measured window. The script
 * builds nothing: it refuses to run when dist/ is missing or older than src/ (`npm run build` first). The
 * child is pinned to CPU 0 and PostgreSQL to CPU 1 (taskset), as in overhead.ts.
 *
 * The profiler: node:inspector's Profiler, started in the child after the warm-up and stopped at the end of
 * the window (default; `--profiler cpu-prof` runs the child under `node --cpu-prof` instead, for comparison).
 * Both drive the same V8 sampler (a thread that signals the main thread and walks its stack), so a sample
 * costs the same inside the window; the difference is around it, and there the inspector distorts less:
 * --cpu-prof samples the whole process (module loading and compiling, connecting, the warm-up, pool.end()),
 * holds it all in memory until exit, and the window has to be cut out by timestamp; the inspector samples the
 * window only. The in-process session enables only the Profiler domain (not the Debugger, which changes how
 * V8 compiles), and the profile is serialised after Profiler.stop, outside the window. The figures agree
 * (see benchmarks/README.md for the comparison run).
 *
 * Sampling interval: 100 µs asked (--interval-us; V8's default is 1000 µs). V8 takes one every ~200-450 µs
 * here (its sampler thread shares CPU 0 with the client; the figure is printed), ~4000 non-idle samples/s:
 * ~80k in a 20 s run, so the sampling error of a 3 % share is ~0.06 points and a 0.1 % function has ~80
 * samples. The price is the client's CPU: on this machine CPU per query was 37-53 µs at 100 µs against
 * 26-31 µs with no profiler and 24-34 µs at 1000 µs (3 alternating 5 s runs each), so the throughput the
 * script prints is not the product's (overhead.ts measures that). The shares do not move with it: at
 * 1000 µs (~10k samples a run) the package's share came out 3.30, 3.19, 3.73 %, at 100 µs 3.19-3.33 % and
 * 3.48-3.64 % in two sets (benchmarks/README.md), each set's spread narrower than at 1000 µs.
 *
 * What is counted. A sample's self frame is the top JavaScript function of the stack V8 saw. Non-idle = every
 * sample but (idle) (the event loop waiting); (program) (native code outside any JS frame: libuv, the
 * bindings' C++ before they call into JS) and (garbage collector) are part of it and shown apart. "The
 * package" = frames whose script is under dist/; pg, pg-pool, pg-protocol by their node_modules folder;
 * "node internals" = node:* scripts; "native" = frames with no script (V8 builtins and C++ bindings that
 * show as frames of their own, e.g. writev). "… incl. natives" gives such native frames to the nearest
 * JavaScript frame below them (the caller that asked for the work).
 *
 * Inlining. V8 charges a sample in inlined code to the function it was inlined INTO (the optimised code
 * object): checked on this Node (20.20, V8 11.3) with a two-function loop, the inlined callee got 0 of ~6600
 * samples with the inspector (4 with --cpu-prof) and ~6800 under --no-turbo-inlining. So a package function
 * that pg-pool's code was inlined into is charged for pg-pool's work (the share is then an upper bound), and a
 * package function inlined into a pg-pool function is charged to pg-pool (a lower bound). V8's line ticks do
 * keep the inlined code's own line numbers (without naming its file): the "own lines" column is the share of
 * a function's samples on its own lines (function extents from dist/'s syntax tree). Unless --no-inlining-check
 * (and not in --smoke) one more pair of runs uses `--no-turbo-inlining`, where every frame holds only its own
 * code (but every call is a real call, so those shares are not the product's either).
 */
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { SourceMap } from 'node:module'
import { loadavg } from 'node:os'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { startCluster } from '../src/testing/cluster'
import { runMain } from './lib/main'

const args = process.argv.slice(2)
/** `--name value` or `--name=value`. */
function option(name: string): string | undefined {
  const eq = args.find((a) => a.startsWith(`${name}=`))
  if (eq) return eq.slice(name.length + 1)
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}
const smoke = args.includes('--smoke')
const SECONDS = Number(option('--seconds') ?? (smoke ? 2 : 20))
const ROUNDS = Number(option('--rounds') ?? (smoke ? 1 : 3))
const INTERVAL_US = Number(option('--interval-us') ?? 100)
const PROFILER = option('--profiler') ?? 'inspector'
const INLINING_CHECK = !smoke && !args.includes('--no-inlining-check')
const PIN = !args.includes('--no-pin')
const WARMUP_MS = smoke ? 500 : 2000
if (!(SECONDS > 0 && ROUNDS >= 1 && INTERVAL_US > 0) || (PROFILER !== 'inspector' && PROFILER !== 'cpu-prof')) {
  throw new Error('usage: profile.ts [--smoke] [--seconds N] [--rounds N] [--interval-us N] [--profiler inspector|cpu-prof] [--no-inlining-check] [--no-pin]')
}
const WORKERS = 8
const HOST = '127.0.55.2'

const root = resolve(__dirname, '..')
const srcDir = join(root, 'src')
const distDir = join(root, 'dist')
const childScript = join(__dirname, 'lib', 'profile-child.mjs')
const outDir = join(root, '.tmp', 'profile')

// ---------------------------------------------------------------------------------------------------------
// dist/ must be there and newer than src/: this script measures what users run, and builds nothing.

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) yield* files(join(dir, e.name))
    else yield join(dir, e.name)
  }
}

function checkBuilt(): void {
  if (!existsSync(join(distDir, 'index.js'))) {
    throw new Error(`${relative(root, distDir)}/index.js is missing: this script profiles the built package. Run \`npm run build\` first.`)
  }
  const stale: string[] = []
  for (const file of files(srcDir)) {
    if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue
    const js = join(distDir, relative(srcDir, file)).replace(/\.ts$/, '.js')
    if (!existsSync(js) || statSync(js).mtimeMs < statSync(file).mtimeMs) stale.push(relative(root, file))
  }
  if (stale.length > 0) {
    throw new Error(
      `dist/ is older than src/ (${stale.slice(0, 5).join(', ')}${stale.length > 5 ? `, and ${stale.length - 5} more` : ''} ` +
        'changed since the last build, or have no output): this script profiles the built package. Run `npm run build` first.'
    )
  }
}

// ---------------------------------------------------------------------------------------------------------
// One measured run: a child process, its profile.

type PoolKind = 'guarded' | 'plain'
const POOL_LABEL: Record<PoolKind, string> = { guarded: 'pg-pool-guard', plain: 'pg.Pool' }

interface ChildResult { queries: number; ms: number; cpuUs: number; passes: number | null; windowUs: [number, number] }

interface Run {
  label: string
  pool: PoolKind
  v8Flags: string[]
  child: ChildResult
  a: Analysis
}

let pinned = false
let runSeq = 0

async function runChild(pool: PoolKind, v8Flags: string[], config: unknown): Promise<{ child: ChildResult; profile: CpuProfile }> {
  const name = `${String(++runSeq).padStart(2, '0')}-${pool}${v8Flags.length ? '-no-inlining' : ''}.cpuprofile`
  const out = join(outDir, name)
  rmSync(out, { force: true })
  const nodeArgs = [
    ...v8Flags,
    ...(PROFILER === 'cpu-prof' ? ['--cpu-prof', `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${name}`, `--cpu-prof-interval=${INTERVAL_US}`] : []),
    childScript,
  ]
  const spec = { pool, workers: WORKERS, seconds: SECONDS, warmupMs: WARMUP_MS, intervalUs: INTERVAL_US, profiler: PROFILER, out, config }
  const { NODE_OPTIONS: _, ...env } = process.env
  const [cmd, argv] = pinned ? ['taskset', ['-c', '0', process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs]
  const stdout = await new Promise<string>((resolvePromise, reject) => {
    const child = spawn(cmd, argv, { cwd: root, env: { ...env, PGG_PROFILE_SPEC: JSON.stringify(spec) }, stdio: ['ignore', 'pipe', 'inherit'] })
    let text = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (text += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 60) * 1000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolvePromise(text)
      else reject(new Error(`the profiled child (${POOL_LABEL[pool]}) exited with ${signal ?? code}`))
    })
  })
  const child = JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult
  const profile = JSON.parse(readFileSync(out, 'utf8')) as CpuProfile
  return { child, profile }
}

// ---------------------------------------------------------------------------------------------------------
// The .cpuprofile: self samples per frame, grouped by where the frame's script lives.

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[]; positionTicks?: { line: number; ticks: number }[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }

const CATEGORIES = [
  'pg-pool-guard', 'pg', 'pg-pool', 'pg-protocol', 'other packages', 'node internals', 'native', 'workload loop', '(program)', '(garbage collector)', 'other',
] as const
type Category = (typeof CATEGORIES)[number] | '(idle)'

interface FnStat {
  category: Category
  name: string
  file: string
  line: number
  column: number
  samples: number
  /** Samples by source line (1-based; V8's line ticks). Lines outside the function are code inlined into it. */
  lines: Map<number, number>
}

interface Analysis {
  nonIdle: number
  idle: number
  seconds: number
  self: Map<Category, number>
  /** Native frames given to the nearest JavaScript frame below them. */
  withNatives: Map<Category, number>
  fns: Map<string, FnStat>
}

function pathOf(url: string): string {
  return url.startsWith('file://') ? fileURLToPath(url) : url
}

function categorize(frame: CallFrame): Category {
  switch (frame.functionName) {
    case '(idle)':
    case '(program)':
    case '(garbage collector)':
      return frame.functionName
  }
  const url = frame.url
  if (url === '') return 'native'
  if (url.startsWith('node:')) return 'node internals'
  const file = pathOf(url)
  if (file.startsWith(distDir + sep)) return 'pg-pool-guard'
  if (file === childScript) return 'workload loop'
  const m = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(file.slice(file.lastIndexOf(`${sep}node_modules${sep}`)))
  if (m) return m[1] === 'pg' || m[1] === 'pg-pool' || m[1] === 'pg-protocol' ? m[1] : 'other packages'
  return 'other'
}

/** Counts self samples per node (within `window`, µs on the monotonic clock, when given) and groups them. */
function analyze(profile: CpuProfile, window?: [number, number]): Analysis {
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const n of profile.nodes) {
    byId.set(n.id, n)
    for (const c of n.children ?? []) parent.set(c, n.id)
  }
  const hits = new Map<number, number>()
  let t = profile.startTime
  let first = Infinity
  let last = -Infinity
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    if (window && (t < window[0] || t > window[1])) continue
    first = Math.min(first, t)
    last = Math.max(last, t)
    hits.set(profile.samples[i], (hits.get(profile.samples[i]) ?? 0) + 1)
  }
  const a: Analysis = { nonIdle: 0, idle: 0, seconds: (last - first) / 1e6, self: new Map(), withNatives: new Map(), fns: new Map() }
  const add = (m: Map<Category, number>, k: Category, n: number): void => void m.set(k, (m.get(k) ?? 0) + n)
  for (const [id, n] of hits) {
    const node = byId.get(id)!
    const cat = categorize(node.callFrame)
    if (cat === '(idle)') {
      a.idle += n
      continue
    }
    a.nonIdle += n
    add(a.self, cat, n)
    let owner: Category = cat
    for (let up = parent.get(id); owner === 'native' && up !== undefined; up = parent.get(up)) {
      const c = categorize(byId.get(up)!.callFrame)
      if (c !== 'native' && c !== 'other') owner = c
    }
    add(a.withNatives, owner, n)
    const f = node.callFrame
    const key = `${f.url}:${f.lineNumber}:${f.columnNumber}:${f.functionName}`
    let fn = a.fns.get(key)
    if (fn) fn.samples += n
    else a.fns.set(key, (fn = { category: cat, name: f.functionName || '(anonymous)', file: pathOf(f.url), line: f.lineNumber, column: f.columnNumber, samples: n, lines: new Map() }))
    // Line ticks count the whole profile, not the window: scaled to this window's samples (the same with the inspector).
    const ticks = node.positionTicks ?? []
    const all = ticks.reduce((s, x) => s + x.ticks, 0)
    for (const x of ticks) fn.lines.set(x.line, (fn.lines.get(x.line) ?? 0) + (x.ticks * n) / all)
  }
  return a
}

// ---------------------------------------------------------------------------------------------------------
// Naming a function of dist/ by its place in src/ (the source maps tsc writes), for the people who edit src/.

const maps = new Map<string, SourceMap | null>()
const sources = new Map<string, string[]>()

function srcPlace(fn: FnStat): { where: string; line: string | null } {
  const distWhere = `${relative(root, fn.file)}:${fn.line + 1}`
  if (!maps.has(fn.file)) {
    try {
      maps.set(fn.file, new SourceMap(JSON.parse(readFileSync(`${fn.file}.map`, 'utf8'))))
    } catch {
      maps.set(fn.file, null)
    }
  }
  const entry = maps.get(fn.file)?.findEntry(fn.line, fn.column) as { originalSource?: string; originalLine?: number } | undefined
  if (!entry?.originalSource || entry.originalLine === undefined) return { where: distWhere, line: null }
  const src = entry.originalSource.startsWith('file://') ? fileURLToPath(entry.originalSource) : resolve(dirname(fn.file), entry.originalSource)
  if (!sources.has(src)) sources.set(src, existsSync(src) ? readFileSync(src, 'utf8').split('\n') : [])
  return { where: `${relative(root, src)}:${entry.originalLine + 1}`, line: sources.get(src)![entry.originalLine]?.trim() ?? null }
}

/** The lines (1-based, first and last) of the function of dist/ that starts at (line, column), from its syntax tree. */
const trees = new Map<string, ts.SourceFile | null>()
function fnLines(fn: FnStat): [number, number] | null {
  if (!trees.has(fn.file)) {
    trees.set(fn.file, existsSync(fn.file) ? ts.createSourceFile(fn.file, readFileSync(fn.file, 'utf8'), ts.ScriptTarget.ES2022, true) : null)
  }
  const sf = trees.get(fn.file)
  if (!sf || fn.line >= sf.getLineStarts().length) return null
  const pos = sf.getPositionOfLineAndCharacter(fn.line, fn.column)
  let found: ts.Node | undefined
  const visit = (n: ts.Node): void => {
    if (n.getStart(sf) > pos || pos >= n.getEnd()) return
    if (ts.isFunctionLike(n)) found = n // the innermost function around V8's position
    ts.forEachChild(n, visit)
  }
  visit(sf)
  if (!found) return null
  return [sf.getLineAndCharacterOfPosition(found.getStart(sf)).line + 1, sf.getLineAndCharacterOfPosition(found.getEnd()).line + 1]
}

/** Samples of `fn` on its own lines, and in all (V8's line ticks); the rest is code inlined into it. */
function ownLines(fn: FnStat): { own: number; all: number } | null {
  const r = fnLines(fn)
  if (!r || fn.lines.size === 0) return null
  let own = 0
  let all = 0
  for (const [line, n] of fn.lines) {
    all += n
    if (line >= r[0] && line <= r[1]) own += n
  }
  return { own, all }
}

/** A function's name for the table; an anonymous one (a listener, a callback) by the start of its source line. */
function fnLabel(fn: FnStat, line: string | null): string {
  if (fn.name !== '(anonymous)' || !line) return `\`${fn.name}\``
  const text = (line.length > 48 ? `${line.slice(0, 47)}…` : line).replace(/\|/g, '\\|')
  return text.includes('`') ? `(anonymous) \`\` ${text} \`\`` : `(anonymous) \`${text}\``
}

// ---------------------------------------------------------------------------------------------------------

const pct = (n: number, of: number): string => (of === 0 ? '-' : `${((100 * n) / of).toFixed(2)} %`)
const share = (a: Analysis, c: Category, m: 'self' | 'withNatives' = 'self'): number => (a.nonIdle === 0 ? 0 : ((a[m].get(c) ?? 0) / a.nonIdle) * 100)
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]

async function main(): Promise<void> {
  checkBuilt()
  mkdirSync(outDir, { recursive: true })
  const loadBefore = loadavg()
  const cluster = await startCluster({ primaryHost: HOST })
  if (PIN) {
    try {
      execFileSync('taskset', ['-a', '-p', '2', String(cluster.primary.pid)], { stdio: 'ignore' })
      execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' })
      pinned = true
    } catch {
      // no taskset, or one core: measure as is
    }
  }
  const runs: Run[] = []
  const measure = async (label: string, pool: PoolKind, v8Flags: string[] = []): Promise<void> => {
    process.stderr.write(`profiling ${POOL_LABEL[pool]}${v8Flags.length ? ` (${v8Flags.join(' ')})` : ''} for ${SECONDS} s ...\n`)
    const { child, profile } = await runChild(pool, v8Flags, cluster.config)
    runs.push({ label, pool, v8Flags, child, a: analyze(profile, PROFILER === 'cpu-prof' ? child.windowUs : undefined) })
  }
  try {
    // pg.Pool's run between the guarded ones, so that drift over the run shows on both.
    await measure('1', 'guarded')
    await measure('2', 'plain')
    for (let r = 1; r < ROUNDS; r++) await measure(String(r + 2), 'guarded')
    if (INLINING_CHECK) {
      await measure('A', 'guarded', ['--no-turbo-inlining'])
      await measure('B', 'plain', ['--no-turbo-inlining'])
    }
  } finally {
    await cluster.stop()
  }
  const loadAfter = loadavg()
  report(runs, loadBefore, loadAfter)
  process.stderr.write(`profiles: ${relative(root, outDir)}/*.cpuprofile (Chrome DevTools' Performance tab or VS Code open them)\n`)
}

/** Which source dist/ was built from, when this is a git checkout: the commit, and whether src/ differs from it. */
function provenance(): string {
  try {
    const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const changed = execFileSync('git', ['-C', root, 'status', '--porcelain', '--', 'src'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const n = changed === '' ? 0 : changed.split('\n').length
    return ` dist/ was built from commit ${commit}${n ? ` with ${n} uncommitted change${n > 1 ? 's' : ''} in src/` : ''}.`
  } catch {
    return ''
  }
}

function report(runs: Run[], loadBefore: number[], loadAfter: number[]): void {
  const main = runs.filter((r) => r.v8Flags.length === 0)
  const guarded = main.filter((r) => r.pool === 'guarded')
  const plain = main.find((r) => r.pool === 'plain')!
  const inl = runs.filter((r) => r.v8Flags.length > 0)
  const inlG = inl.find((r) => r.pool === 'guarded')
  const inlP = inl.find((r) => r.pool === 'plain')
  const load = (l: number[]): string => l.map((x) => x.toFixed(2)).join(' ')
  const takenUs = median(main.map((r) => (r.a.seconds * 1e6) / (r.a.nonIdle + r.a.idle)))
  console.log(
    `8 workers on \`pool.query('SELECT 1')\` (pool max 8), ${SECONDS} s per run under the V8 CPU profiler ` +
      `(${PROFILER === 'inspector' ? 'node:inspector, started after' : '`node --cpu-prof`, cut to the window after'} ${WARMUP_MS / 1000} s of warm-up; ` +
      `a sample asked for every ${INTERVAL_US} µs, taken every ${takenUs.toFixed(0)} µs on average), ` +
      `${ROUNDS} run${ROUNDS > 1 ? 's' : ''} of the guarded pool and one of pg.Pool between them. Each run is a child process that loads \`dist/\` (both kinds) and pg; ` +
      `${pinned ? 'the client is pinned to CPU 0, PostgreSQL to CPU 1' : 'client and server share the cores'}.${provenance()} ` +
      `Load average before: ${load(loadBefore)}, after: ${load(loadAfter)}.\n`
  )
  console.log(
    'Share = self samples over the client\'s non-idle samples (all but (idle)). "native": frames without a script (V8 builtins, C++ bindings such as writeBuffer, ' +
      'the socket write); "incl. natives" gives those to the JavaScript frame that called them. "workload loop": the benchmark\'s own loop. ' +
      'Throughput and CPU per query are under the profiler (the sampler costs the client CPU; overhead.ts measures those without it).\n'
  )
  const cats = CATEGORIES.filter((c) => c !== 'other' || runs.some((r) => (r.a.self.get('other') ?? 0) > 0))
  const header = (): void => {
    console.log(`| run | pool | queries/s | client CPU per query | non-idle samples (per s) | ${cats.join(' | ')} | pg-pool-guard incl. natives |`)
    console.log(`| --- | --- | --- | --- | --- | ${cats.map(() => '---').join(' | ')} | --- |`)
  }
  const row = (r: Run): void => {
    const qps = (r.child.queries / r.child.ms) * 1000
    const cells = cats.map((c) => (c === 'pg-pool-guard' ? `**${share(r.a, c).toFixed(2)} %**` : `${share(r.a, c).toFixed(2)} %`))
    console.log(
      `| ${r.label} | ${POOL_LABEL[r.pool]}${r.v8Flags.length ? ` (${r.v8Flags.join(' ')})` : ''} | ${qps.toFixed(0)} | ${(r.child.cpuUs / r.child.queries).toFixed(1)} µs | ` +
        `${r.a.nonIdle} (${(r.a.nonIdle / r.a.seconds).toFixed(0)}) | ${cells.join(' | ')} | ${share(r.a, 'pg-pool-guard', 'withNatives').toFixed(2)} % |`
    )
  }
  header()
  for (const r of main) row(r)

  const shares = guarded.map((r) => share(r.a, 'pg-pool-guard'))
  const qps = (r: Run): number => r.child.queries / r.child.ms
  console.log(
    `\n**The package's own frames: ${median(shares).toFixed(2)} % of the client's non-idle samples**` +
      `${guarded.length > 1 ? ` (median of ${guarded.length} runs: ${shares.map((x) => x.toFixed(2)).join(', ')} %)` : ''}; ` +
      `pg.Pool: ${share(plain.a, 'pg-pool-guard').toFixed(2)} %. Target (issue 20): ≤ 1 %. ` +
      `The guard's timer passes in those windows: ${guarded.map((r) => r.child.passes ?? 0).join(', ')}.`
  )

  // The package's functions over the guarded runs together.
  const total = guarded.reduce((x, r) => x + r.a.nonIdle, 0)
  const pooled = new Map<string, { fn: FnStat; perRun: number[] }>()
  guarded.forEach((r, i) => {
    for (const [key, fn] of r.a.fns) {
      if (fn.category !== 'pg-pool-guard') continue
      let e = pooled.get(key)
      if (!e) pooled.set(key, (e = { fn: { ...fn, samples: 0, lines: new Map() }, perRun: guarded.map(() => 0) }))
      e.fn.samples += fn.samples
      for (const [line, n] of fn.lines) e.fn.lines.set(line, (e.fn.lines.get(line) ?? 0) + n)
      e.perRun[i] = (100 * fn.samples) / r.a.nonIdle
    }
  })
  const top = [...pooled.values()].sort((x, y) => y.fn.samples - x.fn.samples)
  const many = guarded.length > 1
  console.log(
    `\nThe package's functions by self samples (${many ? `the ${guarded.length} runs together` : 'one run'}; where: src/ through dist/'s source maps). ` +
      '"Own lines": the share of its samples V8 put on the function\'s own lines; the rest ran in code inlined into it, from the package or from pg-pool/pg ' +
      '(V8 charges inlined code to the function it was inlined into, and its line ticks name no file).\n'
  )
  console.log(`| function | where | self samples | % of non-idle${many ? ' | per run' : ''} | own lines |`)
  console.log(`| --- | --- | --- | ---${many ? ' | ---' : ''} | --- |`)
  for (const { fn, perRun } of top.slice(0, 10)) {
    const place = srcPlace(fn)
    const own = ownLines(fn)
    console.log(
      `| ${fnLabel(fn, place.line)} | ${place.where} | ${fn.samples} | ${pct(fn.samples, total)}${many ? ` | ${perRun.map((x) => x.toFixed(2)).join(', ')}` : ''} | ` +
        `${own ? `${((100 * own.own) / own.all).toFixed(0)} %` : '-'} |`
    )
  }
  const rest = top.slice(10)
  console.log(`| ${rest.length} more functions | | ${rest.reduce((x, e) => x + e.fn.samples, 0)} | ${pct(rest.reduce((x, e) => x + e.fn.samples, 0), total)}${many ? ' |' : ''} | |`)

  const byFile = new Map<string, number>()
  let own = 0
  let ticked = 0
  for (const { fn } of pooled.values()) {
    const file = srcPlace(fn).where.replace(/:\d+$/, '')
    byFile.set(file, (byFile.get(file) ?? 0) + fn.samples)
    const o = ownLines(fn)
    if (o) {
      own += o.own
      ticked += o.all
    }
  }
  console.log(`\nBy file: ${[...byFile].sort((x, y) => y[1] - x[1]).filter(([, n]) => n / total >= 0.0001).map(([f, n]) => `${f} ${pct(n, total)}`).join(', ')}.`)
  if (ticked > 0) {
    console.log(
      `Of the package's samples, ${((100 * (ticked - own)) / ticked).toFixed(0)} % are on lines outside the function they are charged to (inlined code).`
    )
  }

  // pg-pool's own functions: pg.Pool vs the guard. pg-pool's work charged to a package frame (inlined into
  // one of its wrappers) goes missing from pg-pool's frames; the no-inlining runs split every frame apart.
  const fnShare = (r: Run | undefined, key: string): string => {
    if (!r) return '-'
    const fn = r.a.fns.get(key)
    return fn && fn.category === 'pg-pool' ? pct(fn.samples, r.a.nonIdle) : '0.00 %'
  }
  const mid = [...guarded].sort((x, y) => share(x.a, 'pg-pool-guard') - share(y.a, 'pg-pool-guard'))[Math.floor(guarded.length / 2)]
  const pgPoolFns = [...plain.a.fns].filter(([, f]) => f.category === 'pg-pool').sort((x, y) => y[1].samples - x[1].samples).slice(0, 6)
  console.log('\npg-pool\'s functions, self share of non-idle samples (pg-pool\'s code inlined into a package frame is missing here, package code inlined into a pg-pool frame is added):\n')
  console.log(`| pg-pool function | pg.Pool | pg-pool-guard (median run)${inl.length ? ' | pg.Pool, no inlining | pg-pool-guard, no inlining' : ''} |`)
  console.log(`| --- | --- | ---${inl.length ? ' | --- | ---' : ''} |`)
  for (const [key, f] of pgPoolFns) {
    console.log(
      `| \`${f.name}\` (index.js:${f.line + 1}) | ${fnShare(plain, key)} | ${fnShare(mid, key)}${inl.length ? ` | ${fnShare(inlP, key)} | ${fnShare(inlG, key)}` : ''} |`
    )
  }
  const catShare = (r: Run | undefined, c: Category): string => (r ? `${share(r.a, c).toFixed(2)} %` : '-')
  console.log(
    `| all of pg-pool | ${catShare(plain, 'pg-pool')} | ${catShare(mid, 'pg-pool')}${inl.length ? ` | ${catShare(inlP, 'pg-pool')} | ${catShare(inlG, 'pg-pool')}` : ''} |`
  )

  if (inl.length) {
    console.log('\nThe same workload with `--no-turbo-inlining` (one run each: every call is a real call, so these shares are not the product\'s; each frame holds only its own code):\n')
    header()
    for (const r of inl) row(r)
    if (inlG) {
      const fns = [...inlG.a.fns.values()].filter((f) => f.category === 'pg-pool-guard').sort((x, y) => y.samples - x.samples).slice(0, 8)
      console.log(
        `\nWithout inlining, the package's top functions: ${fns.map((f) => `${fnLabel(f, srcPlace(f).line)} (${srcPlace(f).where}) ${pct(f.samples, inlG.a.nonIdle)}`).join('; ')}.`
      )
      console.log(
        `The package's share: ${median(shares).toFixed(2)} % with inlining (median), ${share(inlG.a, 'pg-pool-guard').toFixed(2)} % without; ` +
          `pg-pool's: ${share(plain.a, 'pg-pool').toFixed(2)} % under pg.Pool and ${share(mid.a, 'pg-pool').toFixed(2)} % under the guard with inlining, ` +
          `${inlP ? share(inlP.a, 'pg-pool').toFixed(2) : '-'} % and ${share(inlG.a, 'pg-pool').toFixed(2)} % without.`
      )
    }
  }
}

runMain(main)
