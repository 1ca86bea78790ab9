// The namespace thread: one long-lived thread of croot's own (never the event
// loop, never a libuv pool thread) that reads hostnames inside other UTS
// namespaces, one job at a time from a queue:
//
//   setns(pidfd or /proc/PID/ns/uts, CLONE_NEWUTS); gethostname;
//   setns(home, CLONE_NEWUTS); check /proc/thread-self/ns/uts is home.
//
// `home` is crootd's own UTS namespace (/proc/self/ns/uts, the main thread's),
// opened when the thread starts. A thread that cannot prove it is home after
// a job fails that job, takes no other, and ends; the main thread starts a
// new one for the next jobs. Results come back through one thread-safe
// function into Promises.
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "common.h"

namespace croot {

namespace {

// The thread's name in /proc/PID/task/TID/comm, ps -L and gdb.
constexpr const char* kThreadName = "croot-uts";
constexpr const char* kHomePath = "/proc/self/ns/uts";
constexpr const char* kThreadNsPath = "/proc/thread-self/ns/uts";
constexpr const char* kNotHome =
    "the namespace thread could not return to crootd's own UTS namespace; it was discarded and is replaced";

struct HostnameJob {
  HostnameJob(Napi::Env env, int pid) : pid(pid), deferred(Napi::Promise::Deferred::New(env)) {}
  int pid;
  // The job's own copy of the caller's pidfd (-1: enter through /proc/PID/ns/uts).
  FdGuard pidfd;
  Napi::Promise::Deferred deferred;
  std::string hostname;
  SysError error;
  // The thread that ran the job could not get home and has ended.
  bool retired = false;
};

// What the JS thread and the namespace threads share, under `mu`.
struct Shared {
  std::mutex mu;
  std::condition_variable work;    // a job was queued, or stopping
  std::condition_variable exited;  // a thread stopped touching the thread-safe function
  std::deque<HostnameJob*> queue;
  bool stopping = false;   // the environment is going away
  bool accepting = false;  // a thread is running (or starting) and takes jobs
  int alive = 0;           // threads that may still call the thread-safe function
  pid_t tid = 0;           // the accepting thread's tid, once it runs
  uint64_t generation = 0; // threads started so far
  uint64_t replaced = 0;   // threads discarded because they could not get home
  // Test hook: the next job that enters a namespace does not setns back.
  std::atomic<bool> skipNextReturn{false};
};

struct State;
void Settle(Napi::Env env, Napi::Function, State* state, HostnameJob* job);
using SettleFunction = Napi::TypedThreadSafeFunction<State, HostnameJob, Settle>;

// Per JS environment, on its thread: the thread-safe function and how many
// calls are pending (the function keeps the loop alive only while some are).
struct State {
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  SettleFunction tsfn;
  size_t pending = 0;
};

bool SameFile(const struct stat& a, const struct stat& b) { return a.st_ino == b.st_ino && a.st_dev == b.st_dev; }

// True when the calling thread's UTS namespace is the one `home` was stat'ed from.
bool IsHome(const struct stat& home) {
  struct stat now;
  return stat(kThreadNsPath, &now) == 0 && SameFile(now, home);
}

// Runs one job on the namespace thread. Returns false when the thread is not
// home afterwards: then the job has failed and the thread must take no other.
bool RunJob(Shared& shared, HostnameJob& job, int home, const struct stat& homeStat) {
  int target = job.pidfd.get();
  std::string path;
  FdGuard opened;
  if (target < 0) {
    path = "/proc/" + std::to_string(job.pid) + "/ns/uts";
    int fd;
    do {
      fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) job.error.set(errno, "open", path);
    opened.reset(fd);
    target = fd;
  }
  bool entered = false;
  if (target >= 0) {
    // With a pidfd, setns fails with ESRCH once the process has exited: a
    // reused PID is never entered.
    if (setns(target, CLONE_NEWUTS) != 0) {
      job.error.set(errno, "setns", path);
    } else {
      entered = true;
      char name[HOST_NAME_MAX + 1] = {};
      if (gethostname(name, sizeof name - 1) != 0) {
        job.error.set(errno, "gethostname");
      } else {
        job.hostname = name;
      }
    }
  }
  opened.reset();
  job.pidfd.reset();
  int returnErr = 0;
  if (entered && !shared.skipNextReturn.exchange(false) && setns(home, CLONE_NEWUTS) != 0) returnErr = errno;
  // Checked after every job, whatever happened: the thread's namespace is the
  // one saved at start and the way back worked, or the thread is done.
  if (returnErr == 0 && IsHome(homeStat)) return true;
  job.hostname.clear();
  job.error = SysError();
  job.error.set(returnErr != 0 ? returnErr : ENOTRECOVERABLE, "setns", kThreadNsPath);
  job.error.detail = kNotHome;
  return false;
}

// Hands a finished job to the JS thread, unless the environment is going away.
void Deliver(Shared& shared, SettleFunction& tsfn, HostnameJob* job) {
  bool drop;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    drop = shared.stopping;
  }
  if (drop || tsfn.BlockingCall(job) != napi_ok) delete job;
}

// Fails every queued job with `error` (on the namespace thread).
void FailQueued(Shared& shared, SettleFunction& tsfn, std::deque<HostnameJob*>& jobs, const SysError& error) {
  for (HostnameJob* job : jobs) {
    job->pidfd.reset();
    job->error = error;
    Deliver(shared, tsfn, job);
  }
  jobs.clear();
}

void ThreadMain(std::shared_ptr<Shared> shared, SettleFunction tsfn, uint64_t generation) {
  Shared& sh = *shared;
  pthread_setname_np(pthread_self(), kThreadName);
  SysError startError;
  FdGuard home;
  struct stat homeStat = {};
  int fd;
  do {
    fd = open(kHomePath, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    startError.set(errno, "open", kHomePath);
  } else {
    home.reset(fd);
    if (fstat(fd, &homeStat) != 0) {
      startError.set(errno, "fstat", kHomePath);
    } else if (!IsHome(homeStat) && (setns(fd, CLONE_NEWUTS) != 0 || !IsHome(homeStat))) {
      // Started from a thread that was elsewhere: it must be home before any job.
      startError.set(ENOTRECOVERABLE, "setns", kThreadNsPath);
      startError.detail = "a new namespace thread did not start in crootd's own UTS namespace";
    }
  }

  std::deque<HostnameJob*> failed;
  if (startError.failed()) {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.accepting = false;
    failed.swap(sh.queue);
  } else {
    std::lock_guard<std::mutex> lock(sh.mu);
    if (sh.generation == generation) sh.tid = gettid();
  }
  FailQueued(sh, tsfn, failed, startError);

  while (!startError.failed()) {
    HostnameJob* job;
    {
      std::unique_lock<std::mutex> lock(sh.mu);
      sh.work.wait(lock, [&] { return sh.stopping || !sh.queue.empty(); });
      if (sh.stopping) break;
      job = sh.queue.front();
      sh.queue.pop_front();
    }
    if (RunJob(sh, *job, home.get(), homeStat)) {
      Deliver(sh, tsfn, job);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.accepting = false;
      sh.tid = 0;
      sh.replaced++;
    }
    job->retired = true;
    Deliver(sh, tsfn, job);
    break;
  }
  home.reset();
  tsfn.Release();
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.alive--;
  }
  sh.exited.notify_all();
}

void FinishJob(Napi::Env env, State* state, std::unique_ptr<HostnameJob> job) {
  if (--state->pending == 0) state->tsfn.Unref(env);
  if (job->error.failed()) {
    job->deferred.Reject(ErrnoError(env, job->error).Value());
  } else {
    job->deferred.Resolve(Napi::String::New(env, job->hostname));
  }
}

// Starts a namespace thread (JS thread only; `accepting` was set by the
// caller under the lock). When no thread can be made, every queued job fails.
void StartThread(Napi::Env env, State* state) {
  Shared& sh = *state->shared;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    generation = ++sh.generation;
    sh.alive++;
    sh.tid = 0;
  }
  state->tsfn.Acquire();
  try {
    // Created from the JS thread, so it starts in crootd's own namespaces.
    std::thread(ThreadMain, state->shared, state->tsfn, generation).detach();
    return;
  } catch (const std::system_error& e) {
    int err = e.code().value() != 0 ? e.code().value() : EAGAIN;
    std::deque<HostnameJob*> jobs;
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.accepting = false;
      sh.alive--;
      sh.generation--;
      jobs.swap(sh.queue);
    }
    state->tsfn.Release();
    for (HostnameJob* raw : jobs) {
      std::unique_ptr<HostnameJob> job(raw);
      job->error.set(err, "pthread_create");
      FinishJob(env, state, std::move(job));
    }
  }
}

// Settles a job on the JS thread; after a discarded thread's last job, starts
// its replacement.
void Settle(Napi::Env env, Napi::Function, State* state, HostnameJob* raw) {
  std::unique_ptr<HostnameJob> job(raw);
  if (env == nullptr) return;  // The environment is going away: nothing to settle.
  Napi::HandleScope scope(env);
  bool retired = job->retired;
  FinishJob(env, state, std::move(job));
  if (!retired) return;
  bool start;
  {
    std::lock_guard<std::mutex> lock(state->shared->mu);
    start = !state->shared->accepting && !state->shared->stopping;
    if (start) state->shared->accepting = true;
  }
  if (start) StartThread(env, state);
}

// readHostname(pid, pidfd?) -> Promise<string>
Napi::Value ReadHostname(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* state = static_cast<State*>(info.Data());
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  int pidfd = info[1].IsUndefined() || info[1].IsNull() ? -1 : FdArg(info, 1, "pidfd");
  auto job = std::make_unique<HostnameJob>(env, pid);
  Napi::Promise promise = job->deferred.Promise();
  if (pidfd >= 0) {
    // The job owns a copy: the caller may close its pidfd while the job waits.
    int copy = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      job->deferred.Reject(ErrnoError(env, errno, "fcntl").Value());
      return promise;
    }
    job->pidfd.reset(copy);
  }
  if (state->pending++ == 0) state->tsfn.Ref(env);
  Shared& sh = *state->shared;
  bool start;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.queue.push_back(job.release());
    start = !sh.accepting;
    if (start) sh.accepting = true;
  }
  sh.work.notify_one();
  if (start) StartThread(env, state);
  return promise;
}

// namespaceThreadInfo() -> {tid, generation, replaced, queued}
Napi::Value NamespaceThreadInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shared& sh = *static_cast<State*>(info.Data())->shared;
  std::lock_guard<std::mutex> lock(sh.mu);
  Napi::Object result = Napi::Object::New(env);
  result.Set("tid", Napi::Number::New(env, sh.accepting ? sh.tid : 0));
  result.Set("generation", Napi::Number::New(env, static_cast<double>(sh.generation)));
  result.Set("replaced", Napi::Number::New(env, static_cast<double>(sh.replaced)));
  result.Set("queued", Napi::Number::New(env, static_cast<double>(sh.queue.size())));
  return result;
}

// _testSkipNextReturn(): test-only; the next job that enters a namespace stays there.
Napi::Value TestSkipNextReturn(const Napi::CallbackInfo& info) {
  static_cast<State*>(info.Data())->shared->skipNextReturn = true;
  return info.Env().Undefined();
}

// At environment teardown, before the thread-safe function's own cleanup
// (hooks run newest first): stop the threads, wait until none can touch the
// function any more, then let it go.
void Teardown(void* arg) {
  auto* state = static_cast<State*>(arg);
  Shared& sh = *state->shared;
  std::deque<HostnameJob*> jobs;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.stopping = true;
    jobs.swap(sh.queue);
  }
  sh.work.notify_all();
  for (HostnameJob* job : jobs) delete job;
  {
    // Bounded: a running job is a few system calls on /proc and nsfs.
    std::unique_lock<std::mutex> lock(sh.mu);
    sh.exited.wait(lock, [&] { return sh.alive == 0; });
  }
  state->tsfn.Abort();
  delete state;
}

}  // namespace

void InitHostname(Napi::Env env, Napi::Object exports) {
  auto* state = new State();
  state->tsfn = SettleFunction::New(env, "croot.namespaceThread", 0, 1, state);
  state->tsfn.Unref(env);
  napi_status status = napi_add_env_cleanup_hook(env, Teardown, state);
  if (status != napi_ok) throw Napi::Error::New(env, "croot: napi_add_env_cleanup_hook failed");
  exports.Set("readHostname", Napi::Function::New(env, ReadHostname, "readHostname", state));
  exports.Set("namespaceThreadInfo", Napi::Function::New(env, NamespaceThreadInfo, "namespaceThreadInfo", state));
  exports.Set("_testSkipNextReturn", Napi::Function::New(env, TestSkipNextReturn, "_testSkipNextReturn", state));
}

}  // namespace croot
