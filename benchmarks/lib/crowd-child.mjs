// Holds many idle TCP sockets for the benchmarks ("foreign sockets on the host"). Two processes share the
// work (the fd limit here is 20000 per process): `server <port-file>` accepts, `client <port> <n>` connects.
import net from 'node:net'
import { writeFileSync } from 'node:fs'

const [role, a, b] = process.argv.slice(2)
const sockets = []
if (role === 'server') {
  const srv = net.createServer((s) => {
    s.on('error', () => {})
    sockets.push(s)
  })
  srv.listen(0, '127.0.0.99', () => writeFileSync(a, String(srv.address().port)))
} else {
  const port = Number(a)
  const n = Number(b)
  let open = 0
  let started = 0
  const next = () => {
    while (started < n && started - open < 200) {
      started++
      const s = net.connect(port, '127.0.0.99', () => {
        open++
        if (open === n) process.stdout.write('ready\n')
        else next()
      })
      s.on('error', () => {})
      sockets.push(s)
    }
  }
  next()
}
setInterval(() => {}, 1 << 30)
