/**
 * PCP's own rule for container names, as current pmcd applies it before a
 * name reaches the root socket (libpcp's `__pmCheckAttribute` for
 * `PCP_ATTR_CONTAINER`, PCP 6.3.1 and later): every character is an ASCII
 * letter or digit (`isalnum` in the C locale), `.`, `-` or `_`, and the name
 * is not empty. Written from PCP's source, apart from croot's code; PCP 6.0.3
 * on the testbed predates the check, so its library cannot be asked.
 */
export function pmcdAcceptsContainerName(name: string): boolean {
  if (name.length === 0) return false;
  for (const ch of name) {
    const c = ch.codePointAt(0) as number;
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && ch !== '.' && ch !== '-' && ch !== '_') return false;
  }
  return true;
}
