/**
 * What the CLI must never print: passwords, keys, passphrases, tokens. Two layers: the commands do not
 * echo their input (they report findings and names), and every line written goes through `scrub`, which
 * replaces the secret values seen in the input (and in PGPASSWORD) and any URL password.
 */

/**
 * A key whose value is secret: password, sslpassword, PGPASSWORD, passphrase, pwd, secret, token, any
 * `key` (ssl.key, sslkey, apiKey, privateKey), pfx, credentials, auth. Not cert or ca: those are public.
 */
export function isSecretKey(name: string): boolean {
  return /pass|pwd|secret|token|key|pfx|credential|auth/i.test(name)
}

/** `scheme://user:pw@hosts...` -> the index range of `pw`, using the last '@' before the query (as the WHATWG parser does). */
function urlPasswordRange(url: string): [number, number] | undefined {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)
  if (!scheme) return undefined
  const q = url.indexOf('?', scheme[0].length)
  const head = q < 0 ? url : url.slice(0, q)
  const at = head.lastIndexOf('@')
  if (at < scheme[0].length) return undefined
  const colon = head.indexOf(':', scheme[0].length)
  if (colon < 0 || colon > at) return undefined
  return [colon + 1, at]
}

/** A URL with its userinfo password and every secret query parameter (`password=`, `sslpassword=`, `sslkey=`) as ***. */
export function redactUrl(url: string): string {
  let out = url
  const r = urlPasswordRange(out)
  if (r) out = `${out.slice(0, r[0])}***${out.slice(r[1])}`
  const q = out.indexOf('?')
  if (q < 0) return out
  const [query, ...fragment] = out.slice(q + 1).split('#')
  const params = query.split('&').map((p) => {
    const eq = p.indexOf('=')
    if (eq < 0) return p
    return isSecretKey(safeDecode(p.slice(0, eq))) ? `${p.slice(0, eq)}=***` : p
  })
  return [`${out.slice(0, q)}?${params.join('&')}`, ...fragment].join('#')
}

/** The same URL without the password (user kept): what doctor gives its checks, which never need it. */
export function stripUrlPassword(url: string): string {
  const r = urlPasswordRange(url)
  return r ? `${url.slice(0, r[0] - 1)}${url.slice(r[1])}` : url
}

/** The secret values inside a URL: the password (raw and decoded) and the values of secret query parameters. */
export function urlSecrets(url: string): string[] {
  const out: string[] = []
  const r = urlPasswordRange(url)
  if (r) out.push(url.slice(r[0], r[1]), safeDecode(url.slice(r[0], r[1])))
  const q = url.indexOf('?')
  if (q >= 0) {
    for (const p of url.slice(q + 1).split('#')[0].split('&')) {
      const eq = p.indexOf('=')
      if (eq >= 0 && isSecretKey(safeDecode(p.slice(0, eq)))) out.push(p.slice(eq + 1), safeDecode(p.slice(eq + 1).replace(/\+/g, ' ')))
    }
  }
  return out
}

const URL_RE = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]*/gi
const JSON_SECRET_RE = /"((?:[^"\\]|\\.)*)"(\s*:\s*)("(?:[^"\\]|\\.)*"|-?[\d.eE+-]+|true|false|null)/g

/** Replaces URL passwords and secret query parameters, and the values of secret keys in JSON text. */
export function redact(input: string): string {
  return input
    .replace(URL_RE, (u) => redactUrl(u))
    .replace(JSON_SECRET_RE, (all, key: string, sep: string) => (isSecretKey(key) ? `"${key}"${sep}"***"` : all))
}

/** Every secret value in a config object: under a secret key (all leaves), and inside URL strings anywhere. */
export function collectSecrets(value: unknown, underSecretKey = false, out: string[] = []): string[] {
  if (typeof value === 'string') {
    if (underSecretKey) out.push(value)
    else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) out.push(...urlSecrets(value))
  } else if (typeof value === 'number' || typeof value === 'bigint') {
    if (underSecretKey) out.push(String(value))
  } else if (Array.isArray(value)) {
    for (const v of value) collectSecrets(v, underSecretKey, out)
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) collectSecrets(v, underSecretKey || isSecretKey(k), out)
  }
  return out
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

/**
 * Values shorter than this are not scrubbed from output by value (a one-letter "password" would mangle
 * every line); URL passwords are still redacted by position whatever their length.
 */
const MIN_SCRUB_LENGTH = 3
const known = new Set<string>()

/** Registers values that must never appear in output (see scrub). */
export function addSecrets(values: Iterable<string | undefined>): void {
  for (const v of values) {
    if (v === undefined) continue
    const t = v.trim()
    if (t.length >= MIN_SCRUB_LENGTH) known.add(t)
    // A PEM key is printed, if ever, line by line: each of its lines is secret too.
    if (t.includes('\n')) for (const l of t.split(/\r?\n/)) if (l.trim().length >= 16) known.add(l.trim())
  }
}

/** Text safe to print: URL passwords and JSON secret values redacted, every registered secret value replaced. */
export function scrub(text: string): string {
  let out = redact(text)
  // Longest first, so that a secret containing another is replaced whole.
  for (const s of [...known].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join('***')
  return out
}
