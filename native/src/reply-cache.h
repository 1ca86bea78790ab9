// ReplyCache: replies crootd has given before, which a connection's
// StreamSocket may send again without calling into JavaScript (see
// reply-cache.cc). Shared by the StreamSockets of one server.
#pragma once

#include <napi.h>

#include <string>

namespace croot {

class ReplyCache;

// The ReplyCache a JavaScript value wraps, or nullptr when it is not one.
ReplyCache* UnwrapReplyCache(Napi::Value value);

// Appends to `out` the replies to `data` (`length` bytes, whole PDUs only)
// and returns how many when every PDU in it is a request the cache holds and
// each holds still (its process lives; a hostname: no hostname set since).
// Otherwise returns 0 and leaves `out` as it was: JavaScript answers.
size_t AnswerFromCache(ReplyCache* cache, const char* data, size_t length, std::string& out);

// How many times a hostname has been set anywhere (hostname.cc), or -1 when
// that cannot be told; reads and clears the kernel's flag.
long long UtsGenerationNow();
// The same in two steps, for a caller that polls the file with others:
// the fd to poll for POLLPRI (-1: none), then the count given its revents.
int UtsWatchFd();
long long UtsGenerationAfter(short revents);

}  // namespace croot
