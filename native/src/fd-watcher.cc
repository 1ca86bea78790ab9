// FdWatcher: calls a JS function on the event loop whenever one fd is
// readable (a uv_poll_t on Node's own libuv loop). croot uses one for its
// epoll fd of pidfds and one for its inotify fd, so watching 10 000 processes
// costs kernel registrations, not 10 000 loop handles.
#include <uv.h>

#include <memory>

#include "common.h"
#include "poll-handle.h"

namespace croot {

namespace {

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {
                           InstanceMethod<&FdWatcher::Stop>("stop"),
                           InstanceMethod<&FdWatcher::RefHandle>("ref"),
                           InstanceMethod<&FdWatcher::UnrefHandle>("unref"),
                       });
  }

  // new FdWatcher(fd, onReadable): starts watching at once. The fd stays the
  // caller's: stop() the watcher before closing it.
  explicit FdWatcher(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FdWatcher>(info) {
    Napi::Env env = info.Env();
    if (!info.IsConstructCall()) throw ArgError(env, "FdWatcher must be called with new");
    int fd = FdArg(info, 0, "fd");
    if (!info[1].IsFunction()) throw ArgError(env, "onReadable must be a function");
    handle_ = NewPollHandle(env, fd, this, "FdWatcher");
    int rc = uv_poll_start(handle_, UV_READABLE, OnPoll);
    if (rc < 0) {
      CloseHandle();
      throw ErrnoError(env, -rc, "uv_poll_start");
    }
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "croot.FdWatcher", info.This().As<Napi::Object>());
    // A running watcher is not collected even when JS drops it, like any libuv handle.
    Ref();
  }

  ~FdWatcher() override { CloseHandle(); }

 private:
  // stop(): ends the watch; idempotent. Safe inside the callback.
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) {
      CloseHandle();
      Unref();
    }
    return info.Env().Undefined();
  }

  // ref() / unref(): whether the watch keeps the event loop alive (it does at first).
  Napi::Value RefHandle(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value UnrefHandle(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  void CloseHandle() {
    if (handle_ == nullptr) return;
    ClosePollHandle(handle_);
    handle_ = nullptr;
  }

  static void OnPoll(uv_poll_t* handle, int status, int) {
    auto* self = static_cast<FdWatcher*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    Napi::Value arg = status < 0 ? ErrnoError(env, -status, "uv_poll").Value() : env.Undefined();
    try {
      // MakeCallback: runs the microtasks the callback queued, as Node does for its own handles.
      self->callback_.MakeCallback(self->Value(), {arg}, *self->context_);
    } catch (const Napi::Error& e) {
      // A throwing callback is an uncaught exception, as for any event listener.
      napi_fatal_exception(env, e.Value());
    }
  }

  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void InitFdWatcher(Napi::Env env, Napi::Object exports) { exports.Set("FdWatcher", FdWatcher::Define(env)); }

}  // namespace croot
