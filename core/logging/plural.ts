/** `1 container`, `3 containers`: counts in status lines and logs. */
export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
