/**
 * The published types in a strict TypeScript consumer that has only what npm gives it: the packed tarball,
 * `pg` and `typescript` (plus whatever the tarball depends on, such as @types/pg), `skipLibCheck: false`,
 * under `module: nodenext` and under `module: esnext` + `moduleResolution: bundler`. Every type error
 * from our .d.ts files (an undeclared import, a type that needs an uninstalled package) fails here.
 * The consumer sources are test/types/consumer/; npm's local cache makes the installs quick.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

const root = join(__dirname, '..', '..')
const sources = join(root, 'test', 'types', 'consumer')
const ours = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }
/** Same versions as this repo's own install, so npm finds them in its cache. */
const installedVersion = (name: string): string => JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version

const COMMON = { strict: true, skipLibCheck: false, noEmit: true, target: 'ES2022', lib: ['ES2022'] }
const CONFIGS = {
  nodenext: { compilerOptions: { ...COMMON, module: 'nodenext', moduleResolution: 'nodenext' }, files: ['app.ts', 'cjs.cts'] },
  bundler: { compilerOptions: { ...COMMON, module: 'esnext', moduleResolution: 'bundler' }, files: ['app.ts'] },
} as const
const TYPO = "import { Pool } from 'pg-pool-guard'\n\nexport const pool = new Pool({ guard: { stalMs: 5 } })\n"

const OUTER_NPM = new Set(['npm_config_prefix', 'npm_config_local_prefix', 'npm_config_global_prefix', 'npm_config_call', 'npm_config_nodedir'])

let dir: string

function npm(args: string[], cwd: string): string {
  // Under `npm test` npm exports its own locations (npm_config_prefix, local_prefix, ...): they must not
  // steer these installs to the repo. The rest (cache, cafile, registry) is the machine's and stays.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !OUTER_NPM.has(k.toLowerCase())))
  return execFileSync('npm', args, { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Runs the consumer's tsc (in a child: the compiles of one file run side by side); its exit status and error lines. */
function tsc(config: string): Promise<{ status: number | null; errors: string[] }> {
  const bin = join(dir, 'node_modules', 'typescript', 'bin', 'tsc')
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, '-p', config, '--pretty', 'false'], { cwd: dir })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d))
    child.on('close', (status) => resolve({ status, errors: out.split('\n').filter((l) => /error TS\d+/.test(l)) }))
  })
}

describe('published types in a strict consumer', { concurrency: true }, () => {
  before(() => {
    assert.ok(existsSync(join(root, 'dist', 'index.d.ts')), 'dist/ missing: run node scripts/build.mjs first')
    dir = mkdtempSync(join(tmpdir(), 'pgg-types-'))
    // dist/ is fresh (npm test builds first), so pack it as it is.
    npm(['pack', '--ignore-scripts', '--pack-destination', dir, '--loglevel=error'], root)
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))
    assert.ok(tarball, 'npm pack wrote a tarball')
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'pgg-types-consumer', private: true, type: 'module' }))
    npm(
      ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error',
        `./${tarball}`, `pg@${installedVersion('pg')}`, `typescript@${installedVersion('typescript')}`],
      dir
    )
    for (const f of readdirSync(sources)) copyFileSync(join(sources, f), join(dir, f))
    for (const [name, config] of Object.entries(CONFIGS)) writeFileSync(join(dir, `tsconfig.${name}.json`), JSON.stringify(config, null, 2))
    writeFileSync(join(dir, 'typo.ts'), TYPO)
    writeFileSync(join(dir, 'tsconfig.typo.json'), JSON.stringify({ compilerOptions: CONFIGS.nodenext.compilerOptions, files: ['typo.ts'] }, null, 2))
  })
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  it('the consumer has only the package, pg, typescript and our own dependencies', () => {
    const has = (name: string): boolean => existsSync(join(dir, 'node_modules', name, 'package.json'))
    assert.ok(has('pg-pool-guard') && has('pg') && has('typescript'))
    // An optional peer must not sneak in: the types have to stand without it.
    assert.ok(!has('@opentelemetry/api'), '@opentelemetry/api is installed, so the test would not notice an import of it')
    assert.equal(has('@types/pg'), '@types/pg' in (ours.dependencies ?? {}), '@types/pg is there exactly when it is our dependency')
  })

  for (const name of Object.keys(CONFIGS)) {
    it(`compiles with strict, skipLibCheck false, ${name} resolution`, async () => {
      const { status, errors } = await tsc(`tsconfig.${name}.json`)
      assert.deepEqual(errors, [], `type errors (node_modules/pg-pool-guard/... lines are ours):\n${errors.join('\n')}`)
      assert.equal(status, 0)
    })
  }

  it('a misspelt guard option does not compile', async () => {
    const { status, errors } = await tsc('tsconfig.typo.json')
    assert.notEqual(status, 0)
    assert.ok(
      errors.some((l) => l.startsWith('typo.ts') && /'stalMs' does not exist/.test(l)),
      `expected an error for stalMs in typo.ts, got:\n${errors.join('\n')}`
    )
  })
})
