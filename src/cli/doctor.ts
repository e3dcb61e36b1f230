export async function doctorCommand(_args: string[]): Promise<number> {
  throw new Error('doctor: not implemented yet')
}
