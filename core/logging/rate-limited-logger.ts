/**
 * A Logger that keeps crootd's log bounded whatever its clients send. Each
 * kind of line (level + message) may write `burstPerKind` lines per
 * interval, and all kinds together `maxLinesPerInterval`; beyond that lines
 * are counted, and when the interval ends each kind that lost lines writes
 * one summary, e.g.
 *
 *     WARN request failed ×4821 in the last 60 s (status -12399 ×4000, -22 ×821)
 *
 * At most `maxKinds` kinds are told apart (later ones share one "other
 * messages" kind), field values are cut to `maxFieldLength` characters, so
 * an interval writes at most maxLinesPerInterval + maxKinds + 1 lines of
 * bounded length (docs/security.md gives the numbers).
 */
import { LevelLogger, type LogLevel, type Logger } from './logger.js';

export interface RateLimitOptions {
  /** Length of one counting interval. Default 60 000 ms. */
  readonly intervalMs?: number;
  /** Lines one kind may write per interval before it is only counted. Default 10. */
  readonly burstPerKind?: number;
  /** Lines all kinds together may write per interval (summaries not counted). Default 60. */
  readonly maxLinesPerInterval?: number;
  /** Kinds told apart per interval; later ones are summarised together. Default 64. */
  readonly maxKinds?: number;
  /** Longest message or field value written, in characters. Default 256. */
  readonly maxFieldLength?: number;
  /** Fields whose values a summary counts. Default: status, type, uid, label, reason, code, engine. */
  readonly summaryFields?: readonly string[];
  /** Least severe level passed on (lines below it are neither written nor counted). Default 'debug'. */
  readonly level?: LogLevel;
  /** Clock (tests). */
  readonly now?: () => number;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const OTHER_KIND = 'other messages';
/** Distinct values a summary counts per field; the rest are counted as "others". */
const MAX_VALUES_PER_FIELD = 8;
/** Values a summary names per field, most frequent first. */
const SHOWN_VALUES_PER_FIELD = 5;

interface Kind {
  readonly level: LogLevel;
  readonly message: string;
  written: number;
  suppressed: number;
  /** field -> value -> count, over the suppressed lines. */
  readonly values: Map<string, Map<string, number>>;
}

export class RateLimitedLogger extends LevelLogger {
  private readonly intervalMs: number;
  private readonly burstPerKind: number;
  private readonly maxLines: number;
  private readonly maxKinds: number;
  private readonly maxFieldLength: number;
  private readonly summaryFields: readonly string[];
  private readonly level: LogLevel;
  private readonly now: () => number;
  private readonly kinds = new Map<string, Kind>();
  private windowStart: number;
  private written = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly inner: Logger,
    options: RateLimitOptions = {},
  ) {
    super();
    this.intervalMs = options.intervalMs ?? 60_000;
    this.burstPerKind = options.burstPerKind ?? 10;
    this.maxLines = options.maxLinesPerInterval ?? 60;
    this.maxKinds = options.maxKinds ?? 64;
    this.maxFieldLength = options.maxFieldLength ?? 256;
    this.summaryFields = options.summaryFields ?? ['status', 'type', 'uid', 'label', 'reason', 'code', 'engine'];
    this.level = options.level ?? 'debug';
    this.now = options.now ?? Date.now;
    this.windowStart = this.now();
  }


  /** Writes the summaries of the interval so far and starts a new one (crootd calls it when it stops). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const seconds = Math.max(1, Math.round((this.now() - this.windowStart) / 1000));
    for (const kind of this.kinds.values()) {
      if (kind.suppressed > 0) this.inner[kind.level](this.summary(kind, seconds));
    }
    this.kinds.clear();
    this.written = 0;
    this.windowStart = this.now();
  }

  protected log(level: LogLevel, message: string, fields: Record<string, unknown> | undefined): void {
    if (ORDER[level] < ORDER[this.level]) return;
    if (this.now() - this.windowStart >= this.intervalMs) this.flush();
    const kind = this.kindOf(level, message);
    if (kind.written < this.burstPerKind && this.written < this.maxLines) {
      kind.written++;
      this.written++;
      this.inner[level](this.cut(message), this.cutFields(fields));
      return;
    }
    kind.suppressed++;
    if (kind.message === OTHER_KIND) this.count(kind, 'message', message);
    for (const field of this.summaryFields) {
      const value = fields?.[field];
      if (value !== undefined) this.count(kind, field, typeof value === 'string' ? value : JSON.stringify(value));
    }
    // The summary comes at the end of the interval, also when nothing more is logged.
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.intervalMs - this.now()));
      this.timer.unref();
    }
  }

  private kindOf(level: LogLevel, message: string): Kind {
    const key = `${level}\0${message}`;
    let kind = this.kinds.get(key);
    if (kind !== undefined) return kind;
    const overflow = this.kinds.size >= this.maxKinds;
    const otherKey = `${level}\0\0${OTHER_KIND}`;
    if (overflow) kind = this.kinds.get(otherKey);
    if (kind === undefined) {
      kind = { level, message: overflow ? OTHER_KIND : message, written: 0, suppressed: 0, values: new Map() };
      this.kinds.set(overflow ? otherKey : key, kind);
    }
    if (overflow) kind.written = this.burstPerKind; // the shared kind is only ever summarised
    return kind;
  }

  private count(kind: Kind, field: string, raw: string): void {
    const value = this.cut(raw, 64);
    let counts = kind.values.get(field);
    if (counts === undefined) {
      counts = new Map();
      kind.values.set(field, counts);
    }
    const key = counts.has(value) || counts.size < MAX_VALUES_PER_FIELD ? value : '\0others';
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }

  private summary(kind: Kind, seconds: number): string {
    const parts: string[] = [];
    for (const [field, counts] of kind.values) {
      const sorted = [...counts].filter(([v]) => v !== '\0others').sort((a, b) => b[1] - a[1]);
      const shown = sorted.slice(0, SHOWN_VALUES_PER_FIELD).map(([v, n]) => `${/[\s,;()]/.test(v) || v === '' ? JSON.stringify(v) : v} ×${n}`);
      const rest = sorted.slice(SHOWN_VALUES_PER_FIELD).reduce((sum, [, n]) => sum + n, 0) + (counts.get('\0others') ?? 0);
      if (rest > 0) shown.push(`others ×${rest}`);
      parts.push(`${field} ${shown.join(', ')}`);
    }
    const breakdown = parts.length > 0 ? ` (${parts.join('; ')})` : '';
    return `${this.cut(kind.message)} ×${kind.suppressed} in the last ${seconds} s${breakdown}`;
  }

  private cut(text: string, max = this.maxFieldLength): string {
    return text.length <= max ? text : `${text.slice(0, max)}…(${text.length - max} more)`;
  }

  private cutFields(fields: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
    if (fields === undefined) return undefined;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (typeof value === 'string') out[key] = this.cut(value);
      else if (value !== null && typeof value === 'object') {
        const text = JSON.stringify(value) ?? '';
        out[key] = text.length > this.maxFieldLength ? this.cut(text) : value;
      } else out[key] = value;
    }
    return out;
  }
}
