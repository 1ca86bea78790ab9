// The namespace thread: one long-lived thread of croot's own (never the event
// loop, never a libuv pool thread) that reads hostnames inside other UTS
// namespaces, one job at a time from a queue:
//
//   setns(pidfd or /proc/PID/ns/uts, CLONE_NEWUTS); gethostname;
//   setns(home, CLONE_NEWUTS); check the thread's own ns/uts is home.
//
// `home` is crootd's own UTS namespace (/proc/self/ns/uts, the main thread's),
// opened when the thread starts. A thread that cannot prove it is home after
// a job fails that job, takes no other, and ends; the main thread starts a
// new one for the next jobs.
//
// A job's answer reaches JS one of two ways. readHostnameNow waits for it on
// the JS thread, for a strictly bounded time and only while the event loop
// has nothing else to do: when the thread was idle (nothing queued or
// running), the JS thread yields its CPU in a loop (sched_yield) for at most
// `waitMicros` (default kDefaultWaitMicros, never more than kMaxWaitMicros),
// gives up at once when libuv's epoll fd becomes ready (looked at every
// kLoopCheckNanos) or when the thread has not even taken the job after
// kStartWaitNanos, and returns the string (or throws) when the answer came
// within that. Otherwise the job is handed over and its answer comes later
// through a thread-safe function into a Promise, exactly as for readHostname.
// The wait stands in for the epoll_wait the loop would have slept in: the
// answer is there without a wake-up of the loop, a thread-safe call and a
// promise, and never at the cost of other work. Yielding rather than
// spinning gives the CPU to the namespace thread when the scheduler woke it
// on the JS thread's own CPU (on small VMs it mostly does).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include <uv.h>

#include "common.h"
#include "reply-cache.h"

namespace croot {

namespace {

// The thread's name in /proc/PID/task/TID/comm, ps -L and gdb.
constexpr const char* kThreadName = "croot-uts";
constexpr const char* kHomePath = "/proc/self/ns/uts";
constexpr const char* kThreadNsPath = "/proc/thread-self/ns/uts";
constexpr const char* kThreadNsDir = "/proc/thread-self/ns";
constexpr const char* kNotHome =
    "the namespace thread could not return to crootd's own UTS namespace; it was discarded and is replaced";
// How long readHostnameNow waits for an idle thread's answer by default, and
// at most: enough for a halted CPU to be woken and the job's four system
// calls to run, on a busy virtual machine.
constexpr long kDefaultWaitMicros = 50;
constexpr long kMaxWaitMicros = 200;
// How often a waiting JS thread looks whether the event loop has work.
constexpr int64_t kLoopCheckNanos = 4000;
// How long it waits for the thread to take the job at all: a thread that has
// not got a CPU by then will not get one soon.
constexpr int64_t kStartWaitNanos = 15000;

// Where a job's answer goes. The namespace thread moves a job out of
// kWaiting (to kDone) and the JS thread moves it out of kWaiting (to
// kHandedOver), each with one compare-and-swap, so exactly one of them
// settles it.
enum JobState : int {
  kWaiting = 0,     // the JS thread waits for the answer (readHostnameNow)
  kDone = 1,        // finished while the JS thread waited: it takes the answer
  kHandedOver = 2,  // nobody waits: the namespace thread delivers it to a Promise
};

struct HostnameJob {
  HostnameJob(int pid, int fd, bool ownsFd, JobState state) : pid(pid), fd(fd), ownsFd(ownsFd), state(state) {}
  ~HostnameJob() {
    if (ownsFd) CloseQuietly(fd);
  }
  HostnameJob(const HostnameJob&) = delete;
  HostnameJob& operator=(const HostnameJob&) = delete;

  int pid;
  // The pidfd to enter through (-1: through /proc/PID/ns/uts): the job's own
  // copy (ownsFd), or the caller's, borrowed until the job is settled.
  int fd;
  bool ownsFd;
  std::atomic<int> state;
  // The namespace thread has taken the job.
  std::atomic<bool> started{false};
  // Set on the JS thread before the job can reach Settle.
  std::optional<Napi::Promise::Deferred> deferred;
  std::string hostname;
  SysError error;
  // The thread that ran the job could not get home and has ended.
  bool retired = false;
};

long FutexWait(std::atomic<uint32_t>* word, uint32_t expected) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr, nullptr, 0);
}

void FutexWakeOne(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

int64_t NowNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// What the JS thread and the namespace threads share, under `mu`.
struct Shared {
  std::mutex mu;
  std::condition_variable exited;  // a thread stopped touching the thread-safe function
  std::deque<HostnameJob*> queue;
  bool stopping = false;   // the environment is going away
  bool accepting = false;  // a thread is running (or starting) and takes jobs
  bool sleeping = false;   // the accepting thread waits on `wake` for a job
  std::atomic<bool> running{false};  // the accepting thread runs a job (set under `mu`, cleared before delivery)
  int alive = 0;           // threads that may still call the thread-safe function
  pid_t tid = 0;           // the accepting thread's tid, once it runs
  uint64_t generation = 0; // threads started so far
  uint64_t replaced = 0;   // threads discarded because they could not get home
  // Counted on the JS thread only (atomics so that namespaceThreadInfo needs no lock for them).
  std::atomic<uint64_t> answeredAtOnce{0};  // jobs whose answer the JS thread took while it waited
  std::atomic<uint64_t> handedOver{0};      // jobs answered through a Promise
  // The futex a sleeping thread waits on; bumped (under `mu`) to wake it.
  std::atomic<uint32_t> wake{0};
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
  // libuv's epoll fd (uv_backend_fd): readable when the loop has events waiting. -1: unknown.
  int loopFd = -1;
};

// True when the event loop has events waiting (or it cannot be told).
bool LoopHasWork(const State& state) {
  if (state.loopFd < 0) return true;
  struct pollfd pfd = {state.loopFd, POLLIN, 0};
  return poll(&pfd, 1, 0) != 0;
}

bool SameFile(const struct stat& a, const struct stat& b) { return a.st_ino == b.st_ino && a.st_dev == b.st_dev; }

// True when the calling thread's UTS namespace is the one `home` was stat'ed
// from. `nsDir` is the thread's own /proc/thread-self/ns, opened by the
// thread itself: the kernel resolves its `uts` link against the thread's
// namespace at the moment of the call (a magic link, never cached), exactly
// as a stat of /proc/thread-self/ns/uts does, without walking that path.
bool IsHome(int nsDir, const struct stat& home) {
  struct stat now;
  return fstatat(nsDir, "uts", &now, 0) == 0 && SameFile(now, home);
}

// Runs one job on the namespace thread. Returns false when the thread is not
// home afterwards: then the job has failed and the thread must take no other.
bool RunJob(Shared& shared, HostnameJob& job, int home, int nsDir, const struct stat& homeStat) {
  int target = job.fd;
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
  int returnErr = 0;
  if (entered && !shared.skipNextReturn.exchange(false) && setns(home, CLONE_NEWUTS) != 0) returnErr = errno;
  // Checked after every job, whatever happened: the thread's namespace is the
  // one saved at start and the way back worked, or the thread is done.
  if (returnErr == 0 && IsHome(nsDir, homeStat)) return true;
  job.hostname.clear();
  job.error = SysError();
  job.error.set(returnErr != 0 ? returnErr : ENOTRECOVERABLE, "setns", kThreadNsPath);
  job.error.detail = kNotHome;
  return false;
}

// Hands a finished job to the JS thread: to the JS thread waiting for it, or
// else through the thread-safe function, unless the environment is going away.
void Deliver(Shared& shared, SettleFunction& tsfn, HostnameJob* job) {
  int expected = kWaiting;
  // After this succeeds the job is the waiting JS thread's: not touched again here.
  if (job->state.compare_exchange_strong(expected, kDone, std::memory_order_acq_rel)) return;
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
  FdGuard nsDir;
  struct stat homeStat = {};
  int fd;
  do {
    fd = open(kHomePath, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    startError.set(errno, "open", kHomePath);
  } else {
    home.reset(fd);
    do {
      fd = open(kThreadNsDir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
      startError.set(errno, "open", kThreadNsDir);
    } else {
      nsDir.reset(fd);
      struct stat byPath;
      if (fstat(home.get(), &homeStat) != 0) {
        startError.set(errno, "fstat", kHomePath);
      } else if (stat(kThreadNsPath, &byPath) != 0 || !IsHome(nsDir.get(), byPath)) {
        // The directory fd must name this very thread's namespaces.
        startError.set(ENOTRECOVERABLE, "stat", kThreadNsPath);
        startError.detail = "the namespace thread could not open its own /proc/thread-self/ns";
      } else if (!IsHome(nsDir.get(), homeStat) && (setns(home.get(), CLONE_NEWUTS) != 0 || !IsHome(nsDir.get(), homeStat))) {
        // Started from a thread that was elsewhere: it must be home before any job.
        startError.set(ENOTRECOVERABLE, "setns", kThreadNsPath);
        startError.detail = "a new namespace thread did not start in crootd's own UTS namespace";
      }
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
    HostnameJob* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(sh.mu);
      sh.running = false;
      while (!sh.stopping && sh.queue.empty()) {
        uint32_t seen = sh.wake.load(std::memory_order_relaxed);
        sh.sleeping = true;
        lock.unlock();
        // Returns at once when the word moved since it was read (a job came).
        FutexWait(&sh.wake, seen);
        lock.lock();
        sh.sleeping = false;
      }
      if (sh.stopping) break;
      job = sh.queue.front();
      sh.queue.pop_front();
      sh.running = true;
    }
    job->started.store(true, std::memory_order_relaxed);
    if (RunJob(sh, *job, home.get(), nsDir.get(), homeStat)) {
      // Idle again before the answer is out, so the next job may be waited for.
      sh.running.store(false, std::memory_order_relaxed);
      Deliver(sh, tsfn, job);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.accepting = false;
      sh.running = false;
      sh.tid = 0;
      sh.replaced++;
    }
    job->retired = true;
    Deliver(sh, tsfn, job);
    break;
  }
  home.reset();
  nsDir.reset();
  tsfn.Release();
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    sh.alive--;
  }
  sh.exited.notify_all();
}

// Settles a job that reached the JS thread: resolves or rejects its Promise.
void FinishJob(Napi::Env env, State* state, std::unique_ptr<HostnameJob> job) {
  if (--state->pending == 0) state->tsfn.Unref(env);
  if (job->error.failed()) {
    job->deferred->Reject(ErrnoError(env, job->error).Value());
  } else {
    job->deferred->Resolve(Napi::String::New(env, job->hostname));
  }
}

// Starts a namespace thread (JS thread only; `accepting` was set by the
// caller under the lock). When no thread can be made, every queued job fails:
// those handed over through their Promises, and a waiting one through `waiting`
// (set to kDone with its error), so the caller settles it.
void StartThread(Napi::Env env, State* state) {
  Shared& sh = *state->shared;
  uint64_t generation;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    generation = ++sh.generation;
    sh.alive++;
    sh.tid = 0;
    sh.running = false;
    sh.sleeping = false;
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
      raw->error.set(err, "pthread_create");
      int expected = kWaiting;
      if (raw->state.compare_exchange_strong(expected, kDone)) continue;  // its waiter settles it
      FinishJob(env, state, std::unique_ptr<HostnameJob>(raw));
    }
  }
}

// After a discarded thread's last job (on the JS thread): starts its replacement.
void Replace(Napi::Env env, State* state) {
  bool start;
  {
    std::lock_guard<std::mutex> lock(state->shared->mu);
    start = !state->shared->accepting && !state->shared->stopping;
    if (start) state->shared->accepting = true;
  }
  if (start) StartThread(env, state);
}

// Settles a handed-over job on the JS thread; after a discarded thread's last
// job, starts its replacement.
void Settle(Napi::Env env, Napi::Function, State* state, HostnameJob* raw) {
  std::unique_ptr<HostnameJob> job(raw);
  if (env == nullptr) return;  // The environment is going away: nothing to settle.
  Napi::HandleScope scope(env);
  bool retired = job->retired;
  state->shared->handedOver.fetch_add(1, std::memory_order_relaxed);
  FinishJob(env, state, std::move(job));
  if (retired) Replace(env, state);
}

// Queues a job and wakes the thread (starting one when none accepts jobs).
// Returns whether the thread was idle: nothing queued, nothing running.
bool Submit(Napi::Env env, State* state, HostnameJob* job) {
  Shared& sh = *state->shared;
  bool start;
  bool wake = false;
  bool idle;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    idle = sh.queue.empty() && !sh.running;
    sh.queue.push_back(job);
    start = !sh.accepting;
    if (start) sh.accepting = true;
    sh.wake.fetch_add(1, std::memory_order_release);
    if (sh.sleeping) {
      sh.sleeping = false;
      wake = true;
    }
  }
  if (wake) FutexWakeOne(&sh.wake);
  if (start) StartThread(env, state);
  return idle && !start;
}

// A Promise for a job that nobody waits for; it is settled through Settle.
Napi::Value HandOver(Napi::Env env, State* state, HostnameJob* job) {
  job->deferred.emplace(Napi::Promise::Deferred::New(env));
  Napi::Promise promise = job->deferred->Promise();
  if (state->pending++ == 0) state->tsfn.Ref(env);
  return promise;
}

// readHostname(pid, pidfd?) -> Promise<string>
Napi::Value ReadHostname(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* state = static_cast<State*>(info.Data());
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  int pidfd = info[1].IsUndefined() || info[1].IsNull() ? -1 : FdArg(info, 1, "pidfd");
  int copy = -1;
  if (pidfd >= 0) {
    // The job owns a copy: the caller may close its pidfd while the job waits.
    copy = fcntl(pidfd, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) {
      auto deferred = Napi::Promise::Deferred::New(env);
      deferred.Reject(ErrnoError(env, errno, "fcntl").Value());
      return deferred.Promise();
    }
  }
  auto* job = new HostnameJob(pid, copy, copy >= 0, kHandedOver);
  // Before Submit: the job may be finished and delivered as soon as it is queued.
  Napi::Value promise = HandOver(env, state, job);
  Submit(env, state, job);
  return promise;
}

// readHostnameNow(pid, pidfd?, waitMicros?) -> string | Promise<string>
Napi::Value ReadHostnameNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* state = static_cast<State*>(info.Data());
  Shared& sh = *state->shared;
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  int pidfd = info[1].IsUndefined() || info[1].IsNull() ? -1 : FdArg(info, 1, "pidfd");
  long waitMicros =
      info[2].IsUndefined() ? kDefaultWaitMicros : static_cast<long>(Int64Arg(info, 2, "waitMicros", 0, kMaxWaitMicros));
  if (waitMicros == 0) {
    auto* job = new HostnameJob(pid, pidfd, false, kHandedOver);
    Napi::Value promise = HandOver(env, state, job);
    Submit(env, state, job);
    return promise;
  }
  auto* job = new HostnameJob(pid, pidfd, false, kWaiting);
  bool idle = Submit(env, state, job);
  // Wait only for a job that runs at once (behind others it would wait for
  // them too), and only while the loop has nothing else to do.
  if (idle) {
    int64_t now = NowNanos();
    const int64_t deadline = now + waitMicros * 1000;
    const int64_t startDeadline = now + kStartWaitNanos;
    int64_t nextCheck = now + kLoopCheckNanos;
    while (job->state.load(std::memory_order_acquire) == kWaiting) {
      if (now >= deadline) break;
      if (now >= startDeadline && !job->started.load(std::memory_order_relaxed)) break;
      if (now >= nextCheck) {
        if (LoopHasWork(*state)) break;
        nextCheck = now + kLoopCheckNanos;
      }
      // The CPU goes to whatever else may run on it: often the namespace
      // thread itself, which the scheduler tends to wake on this CPU.
      sched_yield();
      now = NowNanos();
    }
  }
  int expected = kWaiting;
  if (job->state.compare_exchange_strong(expected, kHandedOver, std::memory_order_acq_rel)) {
    return HandOver(env, state, job);
  }
  // Finished while we waited (or failed to start): the answer is ours.
  std::unique_ptr<HostnameJob> done(job);
  sh.answeredAtOnce.fetch_add(1, std::memory_order_relaxed);
  if (done->retired) Replace(env, state);
  if (done->error.failed()) throw ErrnoError(env, done->error);
  return Napi::String::New(env, done->hostname);
}

// namespaceThreadInfo() -> {tid, generation, replaced, queued, answeredAtOnce, handedOver}
Napi::Value NamespaceThreadInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Shared& sh = *static_cast<State*>(info.Data())->shared;
  std::lock_guard<std::mutex> lock(sh.mu);
  Napi::Object result = Napi::Object::New(env);
  result.Set("tid", Napi::Number::New(env, sh.accepting ? sh.tid : 0));
  result.Set("generation", Napi::Number::New(env, static_cast<double>(sh.generation)));
  result.Set("replaced", Napi::Number::New(env, static_cast<double>(sh.replaced)));
  result.Set("queued", Napi::Number::New(env, static_cast<double>(sh.queue.size())));
  result.Set("answeredAtOnce", Napi::Number::New(env, static_cast<double>(sh.answeredAtOnce.load())));
  result.Set("handedOver", Napi::Number::New(env, static_cast<double>(sh.handedOver.load())));
  return result;
}

// _testSkipNextReturn(): test-only; the next job that enters a namespace stays there.
Napi::Value TestSkipNextReturn(const Napi::CallbackInfo& info) {
  static_cast<State*>(info.Data())->shared->skipNextReturn = true;
  return info.Env().Undefined();
}

// utsGeneration() -> number: a count that grows each time a hostname is set
// in any UTS namespace of this kernel. sethostname(2) and writes of
// /proc/sys/kernel/hostname, in whatever namespace, flag every open of that
// file (its sysctl poll event, which is global, not per namespace); one
// poll(POLLPRI) with a zero timeout reads and clears the flag. The file is
// opened once per process, when the addon loads (so the fd is there before
// the first request, and stays); -1 when it cannot be, and then nothing may
// be cached on the count.
std::once_flag utsOpened;
int utsFd = -1;
std::atomic<int64_t> utsGenerationCount{0};

void OpenUtsWatch() {
  std::call_once(utsOpened, [] { utsFd = open("/proc/sys/kernel/hostname", O_RDONLY | O_CLOEXEC); });
}

Napi::Value UtsGeneration(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(UtsGenerationNow()));
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
    sh.wake.fetch_add(1, std::memory_order_relaxed);
  }
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(&sh.wake), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);
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

int UtsWatchFd() { return utsFd; }

long long UtsGenerationAfter(short revents) {
  if (utsFd < 0 || (revents & POLLNVAL) != 0) return -1;
  if ((revents & (POLLPRI | POLLERR)) != 0) utsGenerationCount.fetch_add(1);
  return utsGenerationCount.load();
}

long long UtsGenerationNow() {
  int fd = utsFd;
  if (fd < 0) return -1;
  struct pollfd pfd = {fd, POLLPRI, 0};
  if (PollZero(&pfd, 1) < 0) return -1;
  return UtsGenerationAfter(pfd.revents);
}

void InitHostname(Napi::Env env, Napi::Object exports) {
  auto* state = new State();
  state->tsfn = SettleFunction::New(env, "croot.namespaceThread", 0, 1, state);
  state->tsfn.Unref(env);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr) state->loopFd = uv_backend_fd(loop);
  napi_status status = napi_add_env_cleanup_hook(env, Teardown, state);
  if (status != napi_ok) throw Napi::Error::New(env, "croot: napi_add_env_cleanup_hook failed");
  exports.Set("readHostname", Napi::Function::New(env, ReadHostname, "readHostname", state));
  exports.Set("readHostnameNow", Napi::Function::New(env, ReadHostnameNow, "readHostnameNow", state));
  exports.Set("namespaceThreadInfo", Napi::Function::New(env, NamespaceThreadInfo, "namespaceThreadInfo", state));
  OpenUtsWatch();
  exports.Set("utsGeneration", Napi::Function::New(env, UtsGeneration, "utsGeneration"));
  exports.Set("_testSkipNextReturn", Napi::Function::New(env, TestSkipNextReturn, "_testSkipNextReturn", state));
}

}  // namespace croot
