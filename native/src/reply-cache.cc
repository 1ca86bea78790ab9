// ReplyCache: requests crootd has answered, byte for byte, each with the
// reply it got and what that reply rests on: the container's init process (a
// pidfd, lent by its handle until forget()) and, for a hostname, the count of
// hostnames set anywhere when it was read (UtsGenerationNow). A StreamSocket
// whose connection has nothing pending in JavaScript sends replies from here
// when every request in what it has just read is held and each still holds:
// one zero-timeout poll(2) of the pidfd says the process has not exited, and
// a hostname's count is unchanged. JavaScript decides what goes in (answers
// given at once from the live index, with status 0) and empties it on every
// change of the index, so an entry never outlives the index state it was
// answered from (docs/native.md, "Replies answered again"). Bounded in
// entries and bytes: once full, nothing is added until the next forget().
#include "reply-cache.h"

#include <poll.h>

#include <cstdint>
#include <cstring>
#include <unordered_map>

#include "common.h"

namespace croot {

namespace {

// The three requests a reply may be kept for, and their index in hits_.
constexpr int kHostnameReq = 0x9001;
constexpr int kProcessIdReq = 0x9003;
constexpr int kCGroupNameReq = 0x9005;
constexpr size_t kHeaderSize = 16;
// A container request is its header, a pid, a namelen and the name: longer
// keys are names no one asks for twice; they go to JavaScript every time.
constexpr size_t kMaxRequest = 512;
constexpr size_t kMaxReply = 8192;

int KindOf(int type) {
  switch (type) {
    case kHostnameReq:
      return 0;
    case kProcessIdReq:
      return 1;
    case kCGroupNameReq:
      return 2;
    default:
      return -1;
  }
}

const napi_type_tag kTypeTag = {0x63726f6f74726570ULL, 0x6c79636163686531ULL};

int IntAt(const char* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The process behind `pidfd` has exited (or the fd is no pidfd any more).
bool Exited(int pidfd) {
  struct pollfd pfd = {pidfd, POLLIN, 0};
  return PollZero(&pfd, 1) != 0;
}

// Polls `pidfd` (its process has exited?) and the hostname flag at once:
// false when the process has exited; `generation` is set to the count of
// hostnames set (-1 when it cannot be told).
bool PollWithHostnameFlag(int pidfd, long long& generation) {
  struct pollfd pfds[2] = {{pidfd, POLLIN, 0}, {UtsWatchFd(), POLLPRI, 0}};
  if (PollZero(pfds, 2) < 0 || pfds[0].revents != 0) return false;
  generation = UtsGenerationAfter(pfds[1].revents);
  return true;
}

}  // namespace

class ReplyCache : public Napi::ObjectWrap<ReplyCache> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ReplyCache",
                       {
                           InstanceMethod<&ReplyCache::Remember>("remember"),
                           InstanceMethod<&ReplyCache::Forget>("forget"),
                           InstanceMethod<&ReplyCache::Info>("info"),
                       });
  }

  // new ReplyCache(maxEntries, maxBytes): empty; holds at most maxEntries
  // replies and maxBytes of requests and replies together.
  explicit ReplyCache(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ReplyCache>(info) {
    if (!info.IsConstructCall()) throw ArgError(info.Env(), "ReplyCache must be called with new");
    maxEntries_ = static_cast<size_t>(IntArg(info, 0, "maxEntries", 0, 1 << 24));
    maxBytes_ = static_cast<size_t>(Int64Arg(info, 1, "maxBytes", 0, 1LL << 32));
    // Tagged, so that UnwrapReplyCache can tell a ReplyCache from any other object.
    napi_status status = napi_type_tag_object(info.Env(), info.This(), &kTypeTag);
    if (status != napi_ok) throw Napi::Error::New(info.Env(), "croot: napi_type_tag_object failed");
  }

  // Appends the replies to `data` (whole PDUs) to `out`; the number of replies, or 0 (and `out` unchanged).
  size_t Answer(const char* data, size_t length, std::string& out) {
    size_t start = out.size();
    size_t answered = 0;
    int kinds[3] = {0, 0, 0};
    long long generation = -2;  // not read yet
    size_t at = 0;
    while (at < length) {
      if (length - at < kHeaderSize) break;
      int type = IntAt(data + at);
      int size = IntAt(data + at + 4);
      if (size < static_cast<int>(kHeaderSize) || static_cast<size_t>(size) > length - at) break;
      key_.assign(data + at, static_cast<size_t>(size));
      auto it = entries_.find(key_);
      if (it == entries_.end()) break;
      const Entry& entry = it->second;
      if (entry.generation >= 0 && generation == -2) {
        // A hostname's first check in this read: its pidfd and the hostname flag in one poll(2).
        if (!PollWithHostnameFlag(entry.pidfd, generation)) break;
      } else if (Exited(entry.pidfd)) {
        break;
      }
      if (entry.generation >= 0 && generation != entry.generation) break;
      out.append(entry.reply);
      kinds[KindOf(type)]++;
      answered++;
      at += static_cast<size_t>(size);
    }
    if (at != length || answered == 0) {
      out.resize(start);
      return 0;
    }
    for (int k = 0; k < 3; k++) hits_[k] += static_cast<uint64_t>(kinds[k]);
    return answered;
  }

 private:
  struct Entry {
    std::string reply;
    int pidfd;
    // For a hostname, the UtsGenerationNow() its answer was read under; else -1.
    long long generation;
  };

  // remember(request, reply, pidfd, generation) -> boolean: keeps `reply`
  // for the exact bytes of `request` (a HOSTNAME, PROCESSID or CGROUPNAME
  // request) while the process of `pidfd` lives and, for a hostname, while
  // UtsGenerationNow() is `generation`. The pidfd is not copied: it must stay
  // open until forget(). False when the entry is not kept (full, too long,
  // not such a request, a hostname without a generation).
  Napi::Value Remember(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [request, requestLength] = BytesArg(info, 0, "request");
    auto [reply, replyLength] = BytesArg(info, 1, "reply");
    int pidfd = FdArg(info, 2, "pidfd");
    long long generation = Int64Arg(info, 3, "generation", -1, 1LL << 53);
    if (requestLength < kHeaderSize || requestLength > kMaxRequest || replyLength > kMaxReply) return Napi::Boolean::New(env, false);
    int kind = KindOf(IntAt(request));
    if (kind < 0 || static_cast<size_t>(IntAt(request + 4)) != requestLength) return Napi::Boolean::New(env, false);
    if (kind == 0 && generation < 0) return Napi::Boolean::New(env, false);
    size_t size = requestLength + replyLength;
    key_.assign(request, requestLength);
    if (entries_.count(key_) != 0 || entries_.size() >= maxEntries_ || bytes_ + size > maxBytes_) {
      refused_++;
      return Napi::Boolean::New(env, false);
    }
    entries_.emplace(key_, Entry{std::string(reply, replyLength), pidfd, kind == 0 ? generation : -1});
    bytes_ += size;
    return Napi::Boolean::New(env, true);
  }

  // forget() -> number: drops every entry (their pidfds may be closed after); the number dropped.
  Napi::Value Forget(const Napi::CallbackInfo& info) {
    size_t dropped = entries_.size();
    entries_.clear();
    bytes_ = 0;
    return Napi::Number::New(info.Env(), static_cast<double>(dropped));
  }

  // info() -> { entries, bytes, refused, hits: { hostname, processid, cgroupname } }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("entries", Napi::Number::New(env, static_cast<double>(entries_.size())));
    result.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_)));
    result.Set("refused", Napi::Number::New(env, static_cast<double>(refused_)));
    Napi::Object hits = Napi::Object::New(env);
    hits.Set("hostname", Napi::Number::New(env, static_cast<double>(hits_[0])));
    hits.Set("processid", Napi::Number::New(env, static_cast<double>(hits_[1])));
    hits.Set("cgroupname", Napi::Number::New(env, static_cast<double>(hits_[2])));
    result.Set("hits", hits);
    return result;
  }

  std::unordered_map<std::string, Entry> entries_;
  // The key looked up, kept to reuse its memory.
  std::string key_;
  size_t bytes_ = 0;
  size_t maxEntries_ = 0;
  size_t maxBytes_ = 0;
  uint64_t refused_ = 0;
  uint64_t hits_[3] = {0, 0, 0};
};

ReplyCache* UnwrapReplyCache(Napi::Value value) {
  if (!value.IsObject()) return nullptr;
  bool tagged = false;
  if (napi_check_object_type_tag(value.Env(), value, &kTypeTag, &tagged) != napi_ok || !tagged) return nullptr;
  return ReplyCache::Unwrap(value.As<Napi::Object>());
}

size_t AnswerFromCache(ReplyCache* cache, const char* data, size_t length, std::string& out) {
  return cache->Answer(data, length, out);
}

void InitReplyCache(Napi::Env env, Napi::Object exports) {
  exports.Set("ReplyCache", ReplyCache::Define(env));
}

}  // namespace croot
