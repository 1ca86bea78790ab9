// Blocking work on a thread created for one call and thrown away afterwards
// (never the event loop, never a libuv pool thread), settled into a Promise
// through a thread-safe function.
#pragma once

#include <napi.h>

#include "common.h"

namespace croot {

class ThreadJob {
 public:
  explicit ThreadJob(Napi::Env env) : deferred_(Napi::Promise::Deferred::New(env)) {}
  virtual ~ThreadJob() = default;

  // Runs on the job's own thread. Records failures in error_.
  virtual void Run() = 0;
  // Runs on the JS thread when Run() succeeded; returns the resolution value.
  // Resources handed to JS must be released from the job here; whatever the
  // job still owns is freed by its destructor (also when JS is gone).
  virtual Napi::Value Result(Napi::Env env) = 0;

  Napi::Promise::Deferred& deferred() { return deferred_; }
  const SysError& error() const { return error_; }

 protected:
  SysError error_;

 private:
  Napi::Promise::Deferred deferred_;
};

// Starts `job` on a new detached thread and returns its Promise. Takes
// ownership of `job` in every case (also when this throws).
Napi::Promise StartThreadJob(Napi::Env env, ThreadJob* job, const char* resourceName);

}  // namespace croot
