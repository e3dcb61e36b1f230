// Compiles src/ to CommonJS in dist/ and writes the ESM entry points, which re-export the CommonJS build
// so that `import` and `require` share one module instance (no dual-package state split).
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)
const tsc = require.resolve('typescript/bin/tsc')
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' })

for (const entry of ['index', 'testing/index']) {
  const js = join(root, 'dist', `${entry}.js`)
  if (existsSync(js)) writeFileSync(join(root, 'dist', `${entry}.mjs`), "export * from './index.js'\n")
}
const cli = join(root, 'dist', 'cli', 'main.js')
if (existsSync(cli)) chmodSync(cli, 0o755)
