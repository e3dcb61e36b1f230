// The application code under test. Orders are idempotent (ON CONFLICT DO NOTHING), so a write whose
// connection the guard evicted may be retried: the retry is the application's decision, not the pool's.
const RETRYABLE = new Set(['PGG_CONNECTION_EVICTED', 'PGG_NO_HOST_AVAILABLE', 'PGG_HOST_FENCED', 'ECONNRESET', 'ECONNREFUSED', '57P01'])

export async function placeOrder(pool, id) {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('INSERT INTO orders (id) VALUES ($1) ON CONFLICT (id) DO NOTHING', [id])
      return attempt
    } catch (err) {
      const retryable = RETRYABLE.has(err.code) || /Connection terminated/.test(err.message)
      if (!retryable || attempt === 50) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
