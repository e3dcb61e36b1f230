// A node:test reporter for scripts/run-tests.mjs. It writes JSON lines: one per failed test (file, test
// name, the original error's message, not node:test's wrapper) and, per file, the wall time from its
// first event to its latest top-level result. run-tests.mjs prints the failures again after the last
// tier (and .ci/run after the last Node line), so a failure stays readable at the end of a long log, and
// lists the slowest files.
import { relative } from 'node:path'

export default async function* recap(source) {
  const spans = new Map()
  for await (const event of source) {
    const file = event.data?.file ? relative(process.cwd(), event.data.file) : undefined
    if (file && event.type !== 'test:enqueue') { // files can be enqueued long before they run
      const span = spans.get(file)
      if (span) span.last = Date.now()
      else spans.set(file, { first: Date.now(), last: Date.now() })
    }
    if ((event.type === 'test:pass' || event.type === 'test:fail') && event.data.nesting === 0 && file) {
      // Written as it goes (run-tests keeps the largest per file): --test-force-exit ends the process
      // before a reporter's last lines.
      yield `${JSON.stringify({ file, ms: spans.get(file).last - spans.get(file).first })}\n`
    }
    if (event.type !== 'test:fail') continue
    const error = event.data.details?.error
    if (error?.failureType === 'subtestsFailed') continue // its failing subtests have their own lines
    const cause = error?.cause ?? error
    const message = String(cause?.message ?? cause).split('\n').slice(0, 12).join('\n').slice(0, 1500)
    yield `${JSON.stringify({ failed: event.data.name, file: file ?? '?', message })}\n`
  }
}
