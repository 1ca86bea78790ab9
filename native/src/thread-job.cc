#include "thread-job.h"

#include <errno.h>

#include <memory>
#include <system_error>
#include <thread>

namespace croot {

namespace {

void Settle(Napi::Env env, Napi::Function, std::nullptr_t*, ThreadJob* raw) {
  std::unique_ptr<ThreadJob> job(raw);
  if (env == nullptr) return;  // The environment is going away: the destructor frees what the job holds.
  Napi::HandleScope scope(env);
  try {
    if (job->error().failed()) {
      job->deferred().Reject(ErrnoError(env, job->error()).Value());
    } else {
      job->deferred().Resolve(job->Result(env));
    }
  } catch (const Napi::Error& e) {
    job->deferred().Reject(e.Value());
  }
}

using JobFunction = Napi::TypedThreadSafeFunction<std::nullptr_t, ThreadJob, Settle>;

}  // namespace

Napi::Promise StartThreadJob(Napi::Env env, ThreadJob* raw, const char* resourceName) {
  std::unique_ptr<ThreadJob> job(raw);
  Napi::Promise promise = job->deferred().Promise();
  JobFunction tsfn = JobFunction::New(env, resourceName, 0, 1);
  try {
    std::thread worker([tsfn, job = job.get()]() mutable {
      job->Run();
      if (tsfn.BlockingCall(job) != napi_ok) delete job;  // Not queued: JS is gone.
      tsfn.Release();
    });
    job.release();  // Owned by the thread, then by Settle.
    worker.detach();
  } catch (const std::system_error& e) {
    tsfn.Release();
    int err = e.code().value() != 0 ? e.code().value() : EAGAIN;
    throw ErrnoError(env, err, "pthread_create");
  }
  return promise;
}

}  // namespace croot
