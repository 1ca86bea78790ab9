// The process's fd limit: croot holds a pidfd per running container, so it
// takes every fd the hard limit allows. And the memory malloc holds free.
#include <errno.h>
#include <malloc.h>
#include <sys/resource.h>

#include <cmath>

#include <v8.h>

#include "common.h"

namespace croot {

namespace {

Napi::Object LimitObject(Napi::Env env, const struct rlimit& lim) {
  Napi::Object result = Napi::Object::New(env);
  // RLIM_INFINITY does not fit a JS number exactly: it reads as Infinity.
  auto value = [&](rlim_t v) {
    return Napi::Number::New(env, v == RLIM_INFINITY ? INFINITY : static_cast<double>(v));
  };
  result.Set("soft", value(lim.rlim_cur));
  result.Set("hard", value(lim.rlim_max));
  return result;
}

// getFdLimit() -> {soft, hard}: getrlimit(RLIMIT_NOFILE).
Napi::Value GetFdLimit(const Napi::CallbackInfo& info) {
  struct rlimit lim = {};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) throw ErrnoError(info.Env(), errno, "getrlimit");
  return LimitObject(info.Env(), lim);
}

// raiseFdLimit() -> {soft, hard}: setrlimit(RLIMIT_NOFILE) with soft = hard
// when soft is lower; returns the limits in force afterwards.
Napi::Value RaiseFdLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  struct rlimit lim = {};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) throw ErrnoError(env, errno, "getrlimit");
  if (lim.rlim_cur < lim.rlim_max) {
    struct rlimit raised = {lim.rlim_max, lim.rlim_max};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) throw ErrnoError(env, errno, "setrlimit");
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) throw ErrnoError(env, errno, "getrlimit");
  }
  return LimitObject(env, lim);
}

// releaseFreeMemory() -> boolean: malloc_trim(0), which gives the system
// back the whole free pages of every malloc arena (the main one and each
// thread's), not only the top of the main heap as free() does by itself.
// True when some memory was given back.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// reduceHeap(): V8's low-memory collection on the calling isolate: full,
// compacting collections until one frees nothing, with new space shrunk and
// free pages given back (what V8's memory reducer does by itself once the
// allocation rate has been low for some seconds). N-API has no such call.
Napi::Value ReduceHeap(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  return Napi::Boolean::New(info.Env(), isolate != nullptr);
}

}  // namespace

void InitLimits(Napi::Env env, Napi::Object exports) {
  exports.Set("getFdLimit", Napi::Function::New(env, GetFdLimit, "getFdLimit"));
  exports.Set("raiseFdLimit", Napi::Function::New(env, RaiseFdLimit, "raiseFdLimit"));
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory, "releaseFreeMemory"));
  exports.Set("reduceHeap", Napi::Function::New(env, ReduceHeap, "reduceHeap"));
}

}  // namespace croot
