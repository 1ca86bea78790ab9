// StreamSocket: one connected stream socket, read and written on Node's
// event loop without Node's stream machinery. A uv_poll_t watches the fd;
// when it is readable, one read(2) and one call into JavaScript with the
// bytes; write() sends at once with send(2) and queues only what the kernel
// did not take, writing the rest when the socket is writable again. crootd
// adopts each accepted connection into one (docs/native.md, "Connections").
// Given a ReplyCache, it answers by itself what JavaScript has answered
// before: while JavaScript has said it has nothing pending (idle(), or
// `true` returned from the callback), bytes read that are all requests the
// cache holds get their replies sent at once, with no call into JavaScript.
#include <sys/socket.h>
#include <fcntl.h>
#include <uv.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>

#include "common.h"
#include "poll-handle.h"
#include "reply-cache.h"

namespace croot {

namespace {

// What StreamSocket's callback is told, as its first argument.
enum Event { kData = 0, kEnd = 1, kDrain = 2, kError = 3 };

// Bytes read per wakeup: more than any root PDU (8 KiB) and a pipelined batch of them.
constexpr size_t kReadSize = 64 * 1024;

class StreamSocket : public Napi::ObjectWrap<StreamSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "StreamSocket",
                       {
                           InstanceMethod<&StreamSocket::Write>("write"),
                           InstanceMethod<&StreamSocket::Pause>("pause"),
                           InstanceMethod<&StreamSocket::Resume>("resume"),
                           InstanceMethod<&StreamSocket::End>("end"),
                           InstanceMethod<&StreamSocket::Close>("close"),
                           InstanceMethod<&StreamSocket::Idle>("idle"),
                           InstanceAccessor<&StreamSocket::Queued>("queued"),
                           InstanceAccessor<&StreamSocket::Answered>("answered"),
                           InstanceAccessor<&StreamSocket::LastAnswered>("lastAnswered"),
                           InstanceAccessor<&StreamSocket::Fd>("fd"),
                       });
  }

  // new StreamSocket(fd, onEvent): reads and writes a duplicate of `fd` (a
  // connected stream socket; the caller's fd stays the caller's, to close
  // at once: the connection lives on in the duplicate), non-blocking, and
  // starts reading at once. onEvent(kind, value):
  // 0 data (a Buffer), 1 end (the peer shut down its side), 2 drain (the
  // queue is empty again), 3 error (an Error with code and errno; nothing
  // more is read or written). close() closes the fd. onEvent returns true
  // when JavaScript has nothing pending after it (as idle()). `replyCache`
  // (optional): a ReplyCache to answer from while JavaScript is idle.
  explicit StreamSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamSocket>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall()) throw ArgError(env, "StreamSocket must be called with new");
    int given = FdArg(info, 0, "fd");
    if (!info[1].IsFunction()) throw ArgError(env, "onEvent must be a function");
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      cache_ = UnwrapReplyCache(info[2]);
      if (cache_ == nullptr) throw ArgError(env, "replyCache must be a ReplyCache");
      cacheRef_ = Napi::Persistent(info[2].As<Napi::Object>());
    }
    FdGuard fd(fcntl(given, F_DUPFD_CLOEXEC, 0));
    if (fd.get() < 0) throw ErrnoError(env, errno, "fcntl");
    int flags = fcntl(fd.get(), F_GETFL);
    if (flags < 0 || fcntl(fd.get(), F_SETFL, flags | O_NONBLOCK) < 0) throw ErrnoError(env, errno, "fcntl");
    handle_ = NewPollHandle(env, fd.get(), this, "StreamSocket");
    fd_ = fd.release();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "croot.StreamSocket", info.This().As<Napi::Object>());
    int rc = Watch();
    if (rc < 0) {
      CloseHandle(false);
      throw ErrnoError(env, -rc, "uv_poll_start");
    }
    // An open socket is not collected even when JS drops it, like any libuv handle.
    Ref();
  }

  ~StreamSocket() override { CloseHandle(true); }

 private:
  // write(bytes): sends what the kernel takes now and queues the rest.
  // Returns the bytes now queued (0: all sent), or -errno when the socket
  // cannot be written (then nothing is queued).
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto [data, length] = BytesArg(info, 0, "bytes");
    if (fd_ < 0 || shutdown_) return Napi::Number::New(env, -EPIPE);
    int rc = Send(data, length);
    if (rc < 0) return Napi::Number::New(env, rc);
    return Napi::Number::New(env, static_cast<double>(Queued()));
  }

  // idle(): JavaScript has nothing pending; the socket may answer from its ReplyCache until the next call into JavaScript.
  Napi::Value Idle(const Napi::CallbackInfo& info) {
    jsIdle_ = true;
    return info.Env().Undefined();
  }

  // pause() / resume(): whether the socket is read (what is queued is written either way).
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    reading_ = false;
    Watch();
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    reading_ = true;
    Watch();
    return info.Env().Undefined();
  }

  // end(): shuts down the writing side once the queue is written; reading goes on.
  Napi::Value End(const Napi::CallbackInfo& info) {
    if (fd_ >= 0 && !shutdown_) {
      shutdown_ = true;
      if (queue_.empty()) shutdown(fd_, SHUT_WR);
    }
    return info.Env().Undefined();
  }

  // close(): stops watching and closes the fd, dropping anything queued; idempotent, safe inside the callback.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) {
      CloseHandle(false);
      Unref();
    }
    return info.Env().Undefined();
  }

  Napi::Value Queued(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(Queued())); }

  Napi::Value Fd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }

  // answered: requests answered from the ReplyCache; lastAnswered: when the last was (ms of uv_hrtime(), as process.hrtime), 0 if none.
  Napi::Value Answered(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(answered_)); }

  Napi::Value LastAnswered(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(lastAnsweredNs_) / 1e6);
  }

  // Sends what the kernel takes now and queues the rest (after anything
  // queued before); 0, or -errno when the socket cannot be written.
  int Send(const char* data, size_t length) {
    if (!queue_.empty()) {
      queue_.append(data, length);
      return 0;
    }
    ssize_t sent = SendNow(data, length);
    if (sent < 0) return static_cast<int>(sent);
    if (static_cast<size_t>(sent) < length) {
      queue_.assign(data + sent, length - static_cast<size_t>(sent));
      queueAt_ = 0;
      return Watch();
    }
    return 0;
  }

  // send(2)s as much of `data` as the kernel takes now: the bytes sent, or -errno for a failure other than EAGAIN.
  ssize_t SendNow(const char* data, size_t length) {
    size_t sent = 0;
    while (sent < length) {
      ssize_t n = send(fd_, data + sent, length - sent, MSG_NOSIGNAL);
      if (n >= 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -errno;
    }
    return static_cast<ssize_t>(sent);
  }

  // Answers `data` from the ReplyCache when JavaScript is idle and every request in it is held; false: JavaScript answers.
  bool AnswerAlone(Napi::Env env, const char* data, size_t length) {
    if (cache_ == nullptr || !jsIdle_ || shutdown_ || Queued() > 0) return false;
    replies_.clear();
    size_t answered = AnswerFromCache(cache_, data, length, replies_);
    if (answered == 0) return false;
    answered_ += answered;
    lastAnsweredNs_ = uv_hrtime();
    int rc = Send(replies_.data(), replies_.size());
    if (rc < 0) Fail(env, -rc, "send");
    // A large reply stays in replies_'s memory only until the next one.
    if (replies_.capacity() > kReadSize) std::string().swap(replies_);
    return true;
  }

  size_t Queued() const { return queue_.size() - queueAt_; }

  // Watches for what is wanted now: readable while reading, writable while bytes are queued.
  int Watch() {
    if (handle_ == nullptr) return 0;
    int events = (reading_ && !eof_ ? UV_READABLE : 0) | (Queued() > 0 ? UV_WRITABLE : 0);
    if (events == watched_) return 0;
    watched_ = events;
    return events == 0 ? uv_poll_stop(handle_) : uv_poll_start(handle_, events, OnPoll);
  }

  void CloseHandle(bool finalizing) {
    if (handle_ == nullptr) return;
    ClosePollHandle(handle_);
    handle_ = nullptr;
    CloseQuietly(fd_);
    fd_ = -1;
    queue_.clear();
    queueAt_ = 0;
    if (!finalizing) {
      callback_.Reset();
      cacheRef_.Reset();
    }
    cache_ = nullptr;
  }

  // Calls onEvent; false when the socket was closed meanwhile (then `this` must not be touched further).
  // Its returning true says JavaScript has nothing pending (as idle()); data makes it busy first.
  bool Emit(Napi::Env env, Event kind, napi_value value) {
    Napi::HandleScope scope(env);
    if (kind == kData) jsIdle_ = false;
    try {
      // MakeCallback: runs the microtasks the callback queued, as Node does for its own handles.
      Napi::Value idle = callback_.MakeCallback(Value(), {Napi::Number::New(env, kind), value}, *context_);
      if (handle_ != nullptr && idle.IsBoolean() && idle.As<Napi::Boolean>().Value()) jsIdle_ = true;
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
    return handle_ != nullptr;
  }

  void Fail(Napi::Env env, int err, const char* call) {
    reading_ = false;
    Napi::HandleScope scope(env);
    Napi::Value error = ErrnoError(env, err, call).Value();
    // Nothing more is read or written; JS closes.
    if (handle_ != nullptr) {
      uv_poll_stop(handle_);
      watched_ = 0;
    }
    Emit(env, kError, error);
  }

  void Flush(Napi::Env env) {
    ssize_t n = SendNow(queue_.data() + queueAt_, Queued());
    if (n < 0) {
      Fail(env, static_cast<int>(-n), "send");
      return;
    }
    queueAt_ += static_cast<size_t>(n);
    if (Queued() > 0) return;
    queue_.clear();
    queueAt_ = 0;
    if (shutdown_) shutdown(fd_, SHUT_WR);
    Watch();
    Emit(env, kDrain, env.Undefined());
  }

  void ReadOnce(Napi::Env env) {
    static char buffer[kReadSize];
    ssize_t n;
    do {
      n = read(fd_, buffer, sizeof buffer);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) Fail(env, errno, "read");
      return;
    }
    if (n == 0) {
      eof_ = true;
      Watch();
      Emit(env, kEnd, env.Undefined());
      return;
    }
    if (AnswerAlone(env, buffer, static_cast<size_t>(n))) return;
    Napi::HandleScope scope(env);
    Emit(env, kData, Napi::Buffer<char>::Copy(env, buffer, static_cast<size_t>(n)));
  }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<StreamSocket*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      // libuv reports POLLERR as a failed poll: a reset connection, say.
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(self->fd_, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0) err = -status;
      self->Fail(env, err, "poll");
      return;
    }
    if ((events & UV_WRITABLE) != 0) {
      self->Flush(env);
      if (self->handle_ == nullptr) return;
    }
    if ((events & UV_READABLE) != 0 && self->reading_ && !self->eof_) self->ReadOnce(env);
  }

  uv_poll_t* handle_ = nullptr;
  int fd_ = -1;
  int watched_ = 0;
  bool reading_ = true;
  bool eof_ = false;
  bool shutdown_ = false;
  // JavaScript has nothing pending: reads may be answered from cache_.
  bool jsIdle_ = false;
  ReplyCache* cache_ = nullptr;
  Napi::ObjectReference cacheRef_;
  // Replies from cache_, kept to reuse the memory.
  std::string replies_;
  uint64_t answered_ = 0;
  uint64_t lastAnsweredNs_ = 0;
  // Bytes the kernel has not taken yet; queueAt_ is how far they are sent.
  std::string queue_;
  size_t queueAt_ = 0;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitStreamSocket(Napi::Env env, Napi::Object exports) { exports.Set("StreamSocket", StreamSocket::Define(env)); }

}  // namespace croot
