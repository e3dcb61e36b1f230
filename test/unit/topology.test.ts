/** Host lists, libpq session attributes, attempt plans, fencing and topology verdicts — pure. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ConfigError } from '../../src/errors'
import { type HostSpec, parseHosts, planAttempts, type ServerRole, satisfies } from '../../src/topology/hosts'
import { Regions } from '../../src/topology/regions'
import { balances, decideFencing, identitiesWanted, movedTo, topologyVerdicts } from '../../src/judge/topology-rules'
import { judgeLogin } from '../../src/judge/login-rules'
import { serverIdentity } from '../../src/topology/role-query'
import { unknownReplication } from '../../src/topology/replication-query'
import type { HostState, ServerState } from '../../src/topology/topology'

const PRIMARY: ServerRole = { inHotStandby: false, readOnly: false }
const STANDBY: ServerRole = { inHotStandby: true, readOnly: false }
const RO_PRIMARY: ServerRole = { inHotStandby: false, readOnly: true }

describe('host lists', () => {
  it('host "a,b" with one port, per-host ports, arrays', () => {
    assert.deepEqual(parseHosts({ host: 'a,b', port: 5433 }).hosts, [{ host: 'a', port: 5433 }, { host: 'b', port: 5433 }])
    assert.deepEqual(parseHosts({ host: 'a, b', port: '5432,5433' }).hosts, [{ host: 'a', port: 5432 }, { host: 'b', port: 5433 }])
    assert.deepEqual(parseHosts({ host: ['a', 'b'], port: [1, 2] }).hosts, [{ host: 'a', port: 1 }, { host: 'b', port: 2 }])
    assert.deepEqual(parseHosts({ host: '/var/run/postgresql' }).hosts, [{ host: '/var/run/postgresql', port: 5432 }])
    assert.deepEqual(parseHosts({}).hosts, [])
    assert.throws(() => parseHosts({ host: 'a,b,c', port: '1,2' }), (e: unknown) => e instanceof ConfigError && /3 hosts but 2 ports/.test(e.message))
  })

  it('a multi-host connection string, with its own ports and libpq parameters', () => {
    const p = parseHosts({ connectionString: 'postgresql://app:s%40cret@db-a:5432,db-b:5433,[::1]:6000/shop?target_session_attrs=read-write&load_balance_hosts=random&sslmode=disable' })
    assert.deepEqual(p.hosts, [{ host: 'db-a', port: 5432 }, { host: 'db-b', port: 5433 }, { host: '::1', port: 6000 }])
    assert.equal(p.targetSessionAttrs, 'read-write')
    assert.equal(p.loadBalanceHosts, 'random')
    assert.equal(p.connectionString, 'postgresql://app:s%40cret@db-a:5432/shop?target_session_attrs=read-write&load_balance_hosts=random&sslmode=disable')
    assert.throws(() => parseHosts({ connectionString: 'postgres://h/db?target_session_attrs=writable' }), /target_session_attrs=writable.*expected one of any, read-write/)
    assert.deepEqual(parseHosts({ connectionString: 'postgres://h/db' }).hosts, [{ host: 'h', port: 5432 }])
  })
})

describe('target_session_attrs (libpq 14)', () => {
  const table: [string, ServerRole, boolean][] = [
    ['read-write', PRIMARY, true], ['read-write', STANDBY, false], ['read-write', RO_PRIMARY, false],
    ['read-only', STANDBY, true], ['read-only', RO_PRIMARY, true], ['read-only', PRIMARY, false],
    ['primary', RO_PRIMARY, true], ['primary', STANDBY, false],
    ['standby', STANDBY, true], ['standby', PRIMARY, false],
    ['any', STANDBY, true], ['prefer-standby', PRIMARY, true],
  ]
  for (const [attrs, role, ok] of table) {
    it(`${attrs} ${ok ? 'accepts' : 'rejects'} ${JSON.stringify(role)}`, () => assert.equal(satisfies(attrs as never, role), ok))
  }
})

describe('attempt plans', () => {
  const hosts: HostSpec[] = [{ host: 'a', port: 1 }, { host: 'b', port: 1 }, { host: 'c', port: 1 }]
  it('known-good first, unknown next, known-bad, down and fenced last; list order otherwise', () => {
    const know = { a: { role: STANDBY }, b: {}, c: { role: PRIMARY } } as Record<string, object>
    assert.deepEqual(planAttempts(hosts, 'read-write', 'disable', (h) => know[h.host]).map((a) => a.host), ['c', 'b', 'a'])
    const down = { a: { down: true }, b: { fenced: true }, c: {} } as Record<string, object>
    assert.deepEqual(planAttempts(hosts, 'any', 'disable', (h) => down[h.host]).map((a) => a.host), ['c', 'a', 'b'])
  })
  it('prefer-standby makes two passes, as libpq does', () => {
    const plan = planAttempts(hosts.slice(0, 2), 'prefer-standby', 'disable', () => ({}))
    assert.deepEqual(plan.map((a) => `${a.host}:${a.require}`), ['a:standby-first-pass', 'b:standby-first-pass', 'a:any', 'b:any'])
  })
  it('load_balance_hosts=random shuffles (seeded)', () => {
    let seed = 7
    const random = (): number => ((seed = (seed * 16807) % 2147483647) / 2147483647)
    const orders = new Set(Array.from({ length: 20 }, () => planAttempts(hosts, 'any', 'random', () => ({}), random).map((a) => a.host).join('')))
    assert.ok(orders.size > 1)
  })
})

const host = (key: string, o: Partial<HostState>): HostState => {
  const [h, p] = key.split(':')
  return { key, spec: { host: h, port: Number(p) }, isName: false, role: null, roleAt: null, timeline: null, systemId: null, serverId: null, reachable: true, error: null, down: null, fenced: null, addresses: null, region: null, replication: unknownReplication('test'),
    leadsTo: null, leadsToAt: null, serverIdAt: null, routes: [], serversSeen: [], pooler: null, discoveredFrom: null, ...o }
}

describe('fencing (split-brain)', () => {
  it('two writable hosts: the higher timeline is primary, the other fenced with the reason', () => {
    const { primary, fenced } = decideFencing([host('a:1', { role: PRIMARY, timeline: 1 }), host('b:1', { role: PRIMARY, timeline: 2 })], 'a:1')
    assert.equal(primary, 'b:1')
    assert.match(fenced.get('a:1')!, /split-brain: b:1 also accepts writes, on timeline 2 \(this host: timeline 1\)/)
  })
  it('a fenced host stays fenced while writable or unreachable, and is released once it reports standby', () => {
    const stillWritable = decideFencing([host('a:1', { role: PRIMARY, timeline: 1, fenced: 'x' }), host('b:1', { reachable: false })], 'b:1')
    assert.equal(stillWritable.fenced.get('a:1'), 'x')
    assert.equal(stillWritable.primary, null, 'a fenced host is never the primary')
    const rejoined = decideFencing([host('a:1', { role: STANDBY, timeline: 2, fenced: 'x' }), host('b:1', { role: PRIMARY, timeline: 2 })], 'b:1')
    assert.equal(rejoined.fenced.size, 0)
    assert.equal(rejoined.primary, 'b:1')
  })
  it('two writable servers of different clusters (multi-primary) are not a split-brain', () => {
    const r = decideFencing([host('a:1', { role: PRIMARY, timeline: 1, systemId: '111' }), host('b:1', { role: PRIMARY, timeline: 2, systemId: '222' })], null)
    assert.equal(r.fenced.size, 0)
    const same = decideFencing([host('a:1', { role: PRIMARY, timeline: 1, systemId: '111' }), host('b:1', { role: PRIMARY, timeline: 2, systemId: '111' })], null)
    assert.deepEqual([...same.fenced.keys()], ['a:1'])
  })

  it('one server under two names (a VIP or proxy and its direct address) is one server: never fenced against itself', () => {
    const S = { role: PRIMARY, timeline: 1, systemId: '111', serverId: '111/5432/2026-12-01 20:00:00.123456+00' }
    const r = decideFencing([host('vip:1', S), host('direct:1', S)], null)
    assert.equal(r.fenced.size, 0)
    assert.equal(r.primary, 'vip:1')
    // One path down: the other name is the primary, nobody fenced.
    const oneDown = decideFencing([host('vip:1', { ...S, reachable: false }), host('direct:1', S)], 'vip:1')
    assert.deepEqual([oneDown.primary, oneDown.fenced.size], ['direct:1', 0])
    // The previous primary keeps the title while it still reaches the server.
    assert.equal(decideFencing([host('vip:1', S), host('direct:1', S)], 'direct:1').primary, 'direct:1')
  })
  it('a real split-brain with one server double-listed: the promoted server wins, the old one is fenced under both names', () => {
    const A = { role: PRIMARY, timeline: 1, systemId: '111', serverId: '111/5432/2026-12-01 20:00:00.1+00' }
    const B = { role: PRIMARY, timeline: 2, systemId: '111', serverId: '111/5432/2026-12-01 20:00:03.7+00' }
    const r = decideFencing([host('a:1', A), host('a-vip:1', A), host('b:1', B)], 'a:1')
    assert.equal(r.primary, 'b:1')
    assert.deepEqual([...r.fenced.keys()].sort(), ['a-vip:1', 'a:1'])
    assert.match(r.fenced.get('a-vip:1')!, /split-brain: b:1 also accepts writes, on timeline 2 \(this host: timeline 1\)/)
    // Same fate: fenced under one name (the other unreachable then) means fenced under both, until a standby.
    const sticky = decideFencing([host('a:1', { ...A, fenced: 'x' }), host('a-vip:1', A), host('b:1', { reachable: false })], 'b:1')
    assert.deepEqual([...sticky.fenced.entries()], [['a:1', 'x'], ['a-vip:1', 'x']])
    assert.equal(sticky.primary, null)
    const rejoined = decideFencing([host('a:1', { ...A, fenced: 'x', reachable: false }), host('a-vip:1', { ...A, role: STANDBY }), host('b:1', B)], 'b:1')
    assert.equal(rejoined.fenced.size, 0)
  })
  it('the promoted standby wins when the old primary is listed twice and one of its names was the primary', () => {
    const A = { role: PRIMARY, timeline: 1, systemId: '111', serverId: 'A' }
    const r = decideFencing([host('a:1', A), host('a2:1', A), host('b:1', { role: PRIMARY, timeline: 2, systemId: '111', serverId: 'B' })], 'a2:1')
    assert.equal(r.primary, 'b:1')
    assert.equal(r.fenced.size, 2)
  })
  it('a host known writable only from a session report (its monitor has not read it) is neither fenced nor counted', () => {
    const S = { role: PRIMARY, timeline: 1, systemId: '111', serverId: 'S' }
    const r = decideFencing([host('a:1', S), host('a2:1', { role: PRIMARY })], 'a:1')
    assert.deepEqual([r.primary, r.fenced.size], ['a:1', 0])
  })
  it('server identity: system identifier, port and postmaster start time; unknown without the start time', () => {
    assert.equal(serverIdentity('111', { started: '2026-12-01 20:00:00.123456+00', server_port: 5432 }), '111/5432/2026-12-01 20:00:00.123456+00')
    assert.equal(serverIdentity(null, { started: 't', server_port: null }), '?/?/t')
    assert.equal(serverIdentity('111', { started: null, server_port: 5432 }), null)
  })

  it('normal failover: the old primary unreachable, the promoted one primary, nobody fenced', () => {
    const r = decideFencing([host('a:1', { reachable: false, role: PRIMARY, timeline: 1 }), host('b:1', { role: PRIMARY, timeline: 2 })], 'a:1')
    assert.equal(r.primary, 'b:1')
    assert.equal(r.fenced.size, 0)
  })
})

const server = (id: string, o: Partial<ServerState>): ServerState => ({
  id, systemId: '111', address: null, port: null, role: PRIMARY, timeline: 1, reachable: true, seenAt: 0, liveAt: null, fenced: null,
  replayedBelow: null, newFrom: null, newFromAtPromotion: false, ...o,
})
const serversOf = (...xs: ServerState[]): Map<string, ServerState> => new Map(xs.map((x) => [x.id, x]))

describe('fencing by server identity (behind a VIP, a load balancer, a DNS name)', () => {
  it('a VIP whose sessions reached S1, a discovered standby promoted to S2 on timeline 2: S1 fenced, the VIP with it until it leads to S2', () => {
    const vip = host('vip:1', { leadsTo: 'S1', leadsToAt: 10 }) // no monitor (one host, any): known from logins
    const before = decideFencing([vip, host('d:1', { role: STANDBY, timeline: 1, serverId: 'S2', systemId: '111', discoveredFrom: 'vip:1' })], null, serversOf(server('S1', {}), server('S2', { role: STANDBY })), 20)
    assert.deepEqual([before.fencedServers.size, before.primary], [0, 'vip:1'])
    const promoted = host('d:1', { role: PRIMARY, timeline: 2, serverId: 'S2', systemId: '111', discoveredFrom: 'vip:1' })
    const r = decideFencing([vip, promoted], 'vip:1', serversOf(server('S1', {}), server('S2', { timeline: 2, liveAt: 30 })), 30)
    assert.match(r.fencedServers.get('S1')!, /split-brain: d:1 also accepts writes, on timeline 2 \(this host: timeline 1\)/)
    assert.ok(r.fenced.has('vip:1'), 'the VIP still leads to S1: new connections there are refused')
    assert.equal(r.primary, 'd:1')
    // A fresh connection through the VIP now reaches S2: the VIP is not fenced, S1 stays fenced (sticky).
    const moved = decideFencing([host('vip:1', { leadsTo: 'S2', leadsToAt: 40 }), promoted], 'd:1', serversOf(server('S1', { fenced: 'x' }), server('S2', { timeline: 2, liveAt: 40 })), 40)
    assert.deepEqual([moved.fenced.has('vip:1'), moved.fencedServers.get('S1')], [false, 'x'])
  })
  it('one server before and after a restart (two identities, one timeline, neither seen now by a monitor): nobody fenced', () => {
    const r = decideFencing([host('vip:1', { leadsTo: 'S0b', leadsToAt: 50 })], null, serversOf(server('S0', { seenAt: 10 }), server('S0b', { seenAt: 50 })), 60)
    assert.equal(r.fencedServers.size, 0)
  })
  it('two writable servers on one timeline, both seen now: the previous primary keeps the title', () => {
    const servers = serversOf(server('A', { liveAt: 100 }), server('B', { liveAt: 100 }))
    const r = decideFencing([host('a:1', { leadsTo: 'A', leadsToAt: 90 }), host('b:1', { leadsTo: 'B', leadsToAt: 90 })], 'b:1', servers, 100)
    assert.deepEqual([...r.fencedServers.keys()], ['A'])
    assert.equal(r.primary, 'b:1')
  })
  it('a fenced server is released once any source sees it a standby', () => {
    const r = decideFencing([host('vip:1', { leadsTo: 'S2', leadsToAt: 5 })], null, serversOf(server('S1', { fenced: 'x', role: STANDBY }), server('S2', { timeline: 2 })), 10)
    assert.equal(r.fencedServers.size, 0)
  })
})

describe('routes: an address that moved, and one that balances', () => {
  const r = (server: string, at: number): { server: string; at: number } => ({ server, at })
  it('moved: two fresh connections since the login reached one other server, none this one', () => {
    assert.equal(movedTo([r('S1', 1), r('S1', 2), r('S2', 3), r('S2', 4)], 'S1', 2), 'S2')
    assert.equal(movedTo([r('S1', 1), r('S2', 3)], 'S1', 1), null, 'one route is not enough')
    assert.equal(movedTo([r('S1', 1), r('S2', 3), r('S1', 4), r('S2', 5)], 'S1', 1), null, 'S1 was reached again since')
    assert.equal(movedTo([r('S1', 1), r('S2', 3), r('S3', 4)], 'S1', 1), null, 'the last two disagree')
    assert.equal(movedTo([r('S1', 1), r('S2', 3), r('S2', 4)], 'S1', 3), null, 'only routes after the login count')
  })
  it('balanced: an address that went back to a server it had left (a load balancer over replicas)', () => {
    assert.equal(balances([r('A', 1), r('A', 2), r('B', 3), r('B', 4)]), false)
    assert.equal(balances([r('A', 1), r('B', 2), r('A', 3)]), true)
    assert.equal(movedTo([r('A', 1), r('B', 2), r('A', 3), r('C', 4), r('C', 5)], 'A', 3), null)
  })
})

describe('the check after login', () => {
  const base = { hostKey: 'vip:1', require: 'read-write' as const, role: PRIMARY, server: null, pooler: false, hostFenced: null }
  it('refuses a session whose server is fenced, by identity; takes one that reached another server', () => {
    assert.deepEqual(judgeLogin({ ...base, server: { id: 'S1', fenced: 'split-brain', where: 'the server at 10.0.0.1:5432' } }), { ok: false, refuse: 'fenced', why: 'it reached the server at 10.0.0.1:5432, which is fenced: split-brain' })
    assert.deepEqual(judgeLogin({ ...base, server: { id: 'S2', fenced: null, where: 'x' }, hostFenced: 'the host leads to S1' }), { ok: true })
    assert.deepEqual(judgeLogin({ ...base, hostFenced: 'x' }), { ok: false, refuse: 'fenced', why: 'x' })
  })
  it('through a pooler only the role is judged; the role as target_session_attrs says', () => {
    assert.deepEqual(judgeLogin({ ...base, pooler: true, server: { id: 'S1', fenced: 'y', where: 'x' } }), { ok: true })
    assert.deepEqual(judgeLogin({ ...base, role: STANDBY }), { ok: false, refuse: 'wrong-role', found: 'a standby (in_hot_standby=on)', wanted: 'target_session_attrs=read-write' })
  })
})

describe('topology verdicts', () => {
  const sock = (id: number, hostKey: string, o: object = {}) => ({ id, hostKey, ip: hostKey.split(':')[0], role: null, roleAt: null, region: null, ...o })
  it('fenced, stale DNS, wrong role, dual region — each with its evidence', () => {
    const hosts = new Map<string, HostState>([
      ['a:1', host('a:1', { fenced: 'split-brain: b:1 also accepts writes' })],
      ['db.test:1', host('db.test:1', { isName: true, addresses: ['10.0.0.2'] })],
      ['s:1', host('s:1', { role: STANDBY, roleAt: 5 })],
      ['p:1', host('p:1', { role: PRIMARY, region: 'eu' })],
      ['q:1', host('q:1', { role: PRIMARY, region: 'us' })],
    ])
    const v = topologyVerdicts(hosts, [
      sock(1, 'a:1'),
      sock(2, 'db.test:1', { ip: '::ffff:10.0.0.1' }),
      sock(3, 'db.test:1', { ip: '10.0.0.2' }),
      sock(4, 's:1'),
      sock(5, 's:1', { role: PRIMARY, roleAt: 9 }), // the session says primary, and more recently than the monitor
      sock(6, 'p:1', { region: 'eu' }),
      sock(7, 'q:1', { region: 'us' }),
    ], 'read-write', 'p:1', true)
    assert.deepEqual(v.map((x) => [x.id, x.kind]), [[1, 'fenced'], [2, 'stale-dns'], [4, 'wrong-role'], [7, 'dual-region']])
    assert.match(v[1].evidence, /db\.test now resolves to 10\.0\.0\.2; this socket goes to 10\.0\.0\.1/)
    assert.match(v[2].evidence, /s:1 is now a standby \(in_hot_standby=on\), target_session_attrs=read-write/)
    assert.match(v[3].evidence, /socket in region us, the primary p:1 is in eu/)
  })
  it('by the session\'s own server: fenced although its host leads elsewhere; rerouted when the address moved; nothing through a pooler', () => {
    const hosts = new Map<string, HostState>([['vip:1', host('vip:1', { leadsTo: 'S2', leadsToAt: 9, routes: [{ server: 'S1', at: 1 }, { server: 'S2', at: 8 }, { server: 'S2', at: 9 }] })]])
    const servers = serversOf(server('S1', { fenced: 'split-brain: d:1 also accepts writes' }), server('S2', { timeline: 2, address: '10.0.0.3', port: 5432 }), server('S3', { address: '10.0.0.4', port: 5432 }))
    const v = topologyVerdicts(hosts, [
      sock(1, 'vip:1', { serverId: 'S1', loginAt: 1 }),
      sock(2, 'vip:1', { serverId: 'S1', loginAt: 1, pooler: true }),
      sock(3, 'vip:1', { serverId: 'S2', loginAt: 8 }),
      sock(4, 'vip:1', { serverId: 'S3', loginAt: 1 }),
    ], 'read-write', null, false, servers)
    assert.deepEqual(v.map((x) => [x.id, x.kind]), [[1, 'fenced'], [4, 'rerouted']])
    assert.match(v[0].evidence, /the server behind vip:1 this session reached .* is fenced: split-brain/)
    assert.match(v[1].evidence, /vip:1 now leads to another server \(10\.0\.0\.3:5432, primary, timeline 2\); this session is on 10\.0\.0\.4:5432/)
    // Not where the address now leads to a server of the wrong role for the pool.
    const standby = serversOf(server('S2', { role: STANDBY }), server('S3', {}))
    assert.deepEqual(topologyVerdicts(hosts, [sock(4, 'vip:1', { serverId: 'S3', loginAt: 1 })], 'read-write', null, false, standby), [])
  })
  it('a session whose server is unknown is asked for it only where its host cannot speak for it', () => {
    const one = host('a:1', { serversSeen: ['S1'] })
    const moved = host('vip:1', { serversSeen: ['S1', 'S2'] })
    const socks = [
      sock(1, 'a:1'), // an address seen leading to one server: not asked
      sock(2, 'vip:1'), // to two: asked
      sock(3, 'vip:1', { serverId: 'S1' }), // known already
      sock(4, 'vip:1', { identityAsked: true }), // asked once already
      sock(5, 'vip:1', { pooler: true }), // a pooler's session has no one server
    ]
    const hosts = new Map([['a:1', one], ['vip:1', moved]])
    assert.deepEqual(identitiesWanted(hosts, socks, serversOf(server('S1', {}))), [2])
    // While any server is fenced, every session whose server is unknown is asked (a login may have reached it).
    assert.deepEqual(identitiesWanted(hosts, socks, serversOf(server('S1', { fenced: 'split-brain' }))), [1, 2])
  })
})

describe('regions', () => {
  it('by host name, exact IP and CIDR, IPv4-mapped and IPv6', () => {
    const r = new Regions({ eu: ['db-eu.internal', '10.1.0.0/16'], us: ['10.2.3.4', 'fd00::/8'] })
    assert.equal(r.regionOf('db-eu.internal', '192.0.2.1'), 'eu')
    assert.equal(r.regionOf('x', '::ffff:10.1.9.9'), 'eu')
    assert.equal(r.regionOf('x', '10.2.3.4'), 'us')
    assert.equal(r.regionOf('x', 'fd12::1'), 'us')
    assert.equal(r.regionOf('x', '10.3.0.1'), null)
    assert.throws(() => new Regions({ eu: ['10.0.0.0/99'] }), /invalid prefix length/)
    assert.throws(() => new Regions({ eu: ['name/8'] }), /not a valid CIDR/)
  })
})
