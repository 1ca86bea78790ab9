/**
 * The ReplyCache of crootd's connections, on the addon's: replies the request
 * handler gave at once, by the exact bytes of their request, which each
 * NativeConnectionSocket's StreamSocket sends again by itself while its
 * connection has nothing pending in JavaScript (docs/native.md, "Replies
 * answered again"). A reply rests on the pidfd of the process it was
 * answered for: the addon polls it before each answer, the pidfd is
 * borrowed from its handle so that its number stays that process's, and
 * the handle's closing forgets everything (the index let the process go).
 * Only processes held by pidfd are remembered; a /proc handle's answers
 * need their start-time check in JavaScript every time.
 */
import { inject, injectable } from 'inversify';
import type { ProcessHandle, ReplyCache } from '../core/host/host-services.js';
import { CrootNative, type ReplyCache as AddonReplyCache } from './croot-native.js';
import { PidfdProcessHandle } from './native-process-anchor.js';

/** Replies held at most (of as many containers and names as pmcd asks about), and their bytes with their requests. */
export const REPLY_CACHE_ENTRIES = 16_384;
export const REPLY_CACHE_BYTES = 8 * 1024 * 1024;

@injectable()
export class NativeReplyCache implements ReplyCache {
  /** The addon's table, which each connection's StreamSocket is given. */
  readonly table: AddonReplyCache;
  /** The handles whose pidfds the table uses, one borrow each. */
  private lent: PidfdProcessHandle[] = [];
  private readonly forgetAll = (): void => this.forget();

  constructor(@inject(CrootNative) native: CrootNative) {
    this.table = new native.ReplyCache(REPLY_CACHE_ENTRIES, REPLY_CACHE_BYTES);
  }

  remember(request: Buffer, reply: Buffer, holder: ProcessHandle): boolean {
    if (!(holder instanceof PidfdProcessHandle)) return false;
    const pidfd = holder.pidfd;
    if (pidfd === undefined) return false;
    // The addon uses the generation for a hostname request only (the one the handle's hostname was read under).
    if (!this.table.remember(request, reply, pidfd, holder.hostnameGeneration)) return false;
    holder.borrowPidfd();
    holder.whenClosed = this.forgetAll;
    this.lent.push(holder);
    return true;
  }

  forget(): void {
    if (this.lent.length === 0) return;
    this.table.forget();
    const lent = this.lent;
    this.lent = [];
    for (const handle of lent) {
      if (handle.whenClosed === this.forgetAll) handle.whenClosed = undefined;
      handle.returnPidfd();
    }
  }

  answered(): { hostname: number; pid: number; cgroup: number } {
    const hits = this.table.info().hits;
    return { hostname: hits.hostname, pid: hits.processid, cgroup: hits.cgroupname };
  }
}
