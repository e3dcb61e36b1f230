/** The toxics, registered by name (toxiproxy's names, hyphenated). */
import { Bandwidth, type BandwidthOptions } from './bandwidth'
import { Blackhole } from './blackhole'
import { Latency, type LatencyOptions } from './latency'
import { ResetPeer, type ResetPeerOptions } from './reset-peer'
import { SlowClose, type SlowCloseOptions } from './slow-close'
import { Timeout, type TimeoutOptions } from './timeout'
import type { Toxic, ToxicOptions } from './toxic'

export interface ToxicTypes {
  latency: LatencyOptions
  bandwidth: BandwidthOptions
  blackhole: ToxicOptions
  timeout: TimeoutOptions
  'reset-peer': ResetPeerOptions
  'slow-close': SlowCloseOptions
}

export const TOXICS: { [K in keyof ToxicTypes]: new (o: ToxicTypes[K]) => Toxic } = {
  latency: Latency,
  bandwidth: Bandwidth,
  blackhole: Blackhole,
  timeout: Timeout,
  'reset-peer': ResetPeer,
  'slow-close': SlowClose,
}

export { Bandwidth, Blackhole, Latency, ResetPeer, SlowClose, Timeout }
export type { BandwidthOptions, LatencyOptions, ResetPeerOptions, SlowCloseOptions, TimeoutOptions, ToxicOptions }
export { Toxic, type Direction, type Link } from './toxic'
