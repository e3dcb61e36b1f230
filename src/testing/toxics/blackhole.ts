/**
 * blackhole: data is accepted (the proxy's kernel ACKs it) and never forwarded, and the link never closes:
 * an ESTABLISHED zombie, which the client's kernel cannot tell from a slow server.
 */
import { type Link, Toxic } from './toxic'

export class Blackhole extends Toxic {
  readonly type = 'blackhole'

  override pipe(_chunk: Buffer, _link: Link): null {
    return null
  }
}
