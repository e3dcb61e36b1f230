export async function scanCommand(_args: string[]): Promise<number> {
  throw new Error('scan: not implemented yet')
}
