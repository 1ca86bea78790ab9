/** A small leveled logger; crootd logs to stderr (or a file) one line per event. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const Logger = Symbol.for('croot/Logger');
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

function render(fields: Record<string, unknown> | undefined): string {
  if (fields === undefined) return '';
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    parts.push(`${key}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return parts.length > 0 ? ` ${parts.join(' ')}` : '';
}

/** Writes `TIME LEVEL message key=value...` lines to a stream (stderr by default). */
/** A Logger whose four levels all go through one `log(level, ...)`. */
export abstract class LevelLogger implements Logger {
  protected abstract log(level: LogLevel, message: string, fields: Record<string, unknown> | undefined): void;

  debug(message: string, fields?: Record<string, unknown>): void {
    this.log('debug', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.log('info', message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.log('warn', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.log('error', message, fields);
  }
}

export class StreamLogger extends LevelLogger {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    private readonly name = 'crootd',
  ) {
    super();
  }

  protected log(level: LogLevel, message: string, fields: Record<string, unknown> | undefined): void {
    if (ORDER[level] < ORDER[this.level]) return;
    this.write(`${new Date().toISOString()} ${this.name}[${process.pid}] ${level.toUpperCase()} ${message}${render(fields)}\n`);
  }

}

/** Drops everything (library default). */
export class SilentLogger implements Logger {
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(): void {}
}
