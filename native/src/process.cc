// Starting, reaping and signalling processes for the privileged process service.
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

#include <climits>
#include <string>
#include <vector>

#include "common.h"

#ifndef SYS_close_range
#define SYS_close_range 436  // the same number on every architecture since Linux 5.9
#endif

namespace croot {

namespace {

std::vector<std::string> StringArray(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsArray()) throw ArgError(env, std::string(name) + " must be an array of strings");
  Napi::Array list = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsString()) throw ArgError(env, std::string(name) + " must be an array of strings");
    std::string s = item.As<Napi::String>().Utf8Value();
    if (s.find('\0') != std::string::npos) throw ArgError(env, std::string(name) + " entries must not contain NUL", false);
    out.push_back(std::move(s));
  }
  return out;
}

std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int StdioFd(Napi::Env env, Napi::Object stdio, const char* name) {
  Napi::Value v = stdio.Get(name);
  if (v.IsUndefined() || v.IsNull()) return -1;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -2;
  if (!(d >= -1 && d <= INT_MAX && static_cast<double>(static_cast<int>(d)) == d)) {
    throw ArgError(env, std::string("stdio.") + name + " must be a file descriptor or -1", false);
  }
  return static_cast<int>(d);
}

// What the cloned child needs; it writes `err`/`call` (shared memory) when it cannot exec.
struct ChildArgs {
  const char* file;
  char* const* argv;
  char* const* envp;
  int stdio[3];
  long maxFd;
  volatile int err;
  const char* volatile call;
};

// The kernel's sigset for rt_sigaction/rt_sigprocmask: 64 signals, 8 bytes.
constexpr size_t kKernelSigsetSize = 8;
constexpr int kKernelSignals = 64;

// Raw system calls only (no glibc wrapper that could take a lock or filter
// signals); the child shares the parent's memory until it execs.
void ChildFail(ChildArgs* a, const char* call) {
  a->err = errno;
  a->call = call;
  syscall(SYS_exit, 127);
}

int ChildMain(void* arg) {
  ChildArgs* a = static_cast<ChildArgs*>(arg);
  // Every signal is blocked here (the parent blocked them all before clone),
  // so no handler of crootd's can run in this child. Reset every
  // disposition, glibc's internal 32 and 33 included, to the default: an
  // all-zero kernel sigaction is SIG_DFL with no flags and an empty mask.
  // SIGKILL and SIGSTOP refuse (EINVAL) and are always default anyway.
  unsigned char dfl[64] = {0};
  for (int sig = 1; sig <= kKernelSignals; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (syscall(SYS_rt_sigaction, sig, dfl, nullptr, kKernelSigsetSize) != 0) ChildFail(a, "rt_sigaction");
  }
  // The sources are copies above 2, so no dup3 onto 0..2 clobbers a later source.
  for (int i = 0; i < 3; i++) {
    if (syscall(SYS_dup3, a->stdio[i], i, 0) < 0) ChildFail(a, "dup3");
  }
  if (syscall(SYS_close_range, 3, ~0U, 0) != 0) {
    if (errno != ENOSYS) ChildFail(a, "close_range");
    for (long fd = 3; fd < a->maxFd; fd++) syscall(SYS_close, fd);  // kernels before 5.9
  }
  uint64_t none = 0;
  if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, kKernelSigsetSize) != 0) ChildFail(a, "rt_sigprocmask");
  syscall(SYS_execve, a->file, a->argv, a->envp);
  ChildFail(a, "execve");
  return 127;
}

// Blocks every signal of the calling thread, glibc's internal ones too
// (pthread_sigmask would leave those out); restores the old mask when done.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    uint64_t all = ~uint64_t{0};
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &all, &old_, kKernelSigsetSize);
  }
  ~AllSignalsBlocked() { syscall(SYS_rt_sigprocmask, SIG_SETMASK, &old_, nullptr, kKernelSigsetSize); }

 private:
  uint64_t old_ = 0;
};

// A stack for the cloned child, unmapped when done.
class ChildStack {
 public:
  static constexpr size_t kSize = 64 * 1024;
  ChildStack() {
    base_ = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  }
  ~ChildStack() {
    if (base_ != MAP_FAILED) munmap(base_, kSize);
  }
  bool ok() const { return base_ != MAP_FAILED; }
  void* top() const { return static_cast<char*>(base_) + kSize; }

 private:
  void* base_;
};

// spawn(file, argv, envp, {stdin, stdout, stderr}) -> pid
//
// Not posix_spawn: glibc's child sets its two internal signals (32 and 33,
// SIGCANCEL and SIGSETXID) to SIG_IGN, which execve keeps, and they cannot be
// put in the attribute's default set (sigfillset leaves them out, sigaddset
// refuses them). So the child is made here: clone(CLONE_VM | CLONE_VFORK)
// on a stack of its own with every signal blocked, then raw system calls
// only: every disposition to SIG_DFL, dup3 of the three stdio fds, close_range
// from 3, an empty signal mask, execve. The parent resumes once the child
// has exec'd or failed; a failure comes back through shared memory and the
// child is reaped.
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = StringArg(info, 0, "file");
  std::vector<std::string> argv = StringArray(env, info[1], "argv");
  std::vector<std::string> envp = StringArray(env, info[2], "envp");
  Napi::Object stdio = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  const char* names[3] = {"stdin", "stdout", "stderr"};
  int sources[3];
  for (int i = 0; i < 3; i++) sources[i] = StdioFd(env, stdio, names[i]);

  // Each source copied above 2 (close-on-exec), /dev/null for an absent one.
  FdGuard copies[3];
  for (int i = 0; i < 3; i++) {
    int fd;
    if (sources[i] >= 0) {
      fd = fcntl(sources[i], F_DUPFD_CLOEXEC, 3);
      if (fd < 0) throw ErrnoError(env, errno, "fcntl");
    } else {
      int null = open("/dev/null", (i == 0 ? O_RDONLY : O_WRONLY) | O_CLOEXEC);
      if (null < 0) throw ErrnoError(env, errno, "open", "/dev/null");
      FdGuard guard(null);
      fd = fcntl(null, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) throw ErrnoError(env, errno, "fcntl");
    }
    copies[i].reset(fd);
  }

  std::vector<char*> argvp = NullTerminated(argv);
  std::vector<char*> envpp = NullTerminated(envp);
  ChildArgs args{file.c_str(), argvp.data(), envpp.data(), {copies[0].get(), copies[1].get(), copies[2].get()}, 0, 0, nullptr};
  struct rlimit nofile;
  args.maxFd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY ? static_cast<long>(nofile.rlim_cur) : 65536;

  ChildStack stack;
  if (!stack.ok()) throw ErrnoError(env, errno, "mmap");
  pid_t pid;
  {
    AllSignalsBlocked blocked;
    pid = clone(ChildMain, stack.top(), CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  }
  if (pid < 0) throw ErrnoError(env, errno, "clone");
  if (args.err != 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    throw ErrnoError(env, args.err, args.call, std::string(args.call) == "execve" ? file : std::string());
  }
  return Napi::Number::New(env, pid);
}

// waitpid(pid, flags) -> {pid, status, exited, exitCode, signaled, signal}; pid 0 = nothing to reap (WNOHANG).
Napi::Value WaitPid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Only a specific child: waitpid(-1) could reap a process libuv started and is waiting for.
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  int flags = info[1].IsUndefined() ? 0 : IntArg(info, 1, "flags", 0, INT_MAX);
  int status = 0;
  pid_t got;
  do {
    got = waitpid(pid, &status, flags);
  } while (got < 0 && errno == EINTR);
  if (got < 0) throw ErrnoError(env, errno, "waitpid");
  Napi::Object result = Napi::Object::New(env);
  bool reaped = got > 0;
  bool exited = reaped && WIFEXITED(status);
  bool signaled = reaped && WIFSIGNALED(status);
  result.Set("pid", Napi::Number::New(env, got));
  result.Set("status", Napi::Number::New(env, reaped ? status : 0));
  result.Set("exited", Napi::Boolean::New(env, exited));
  result.Set("exitCode", exited ? Napi::Number::New(env, WEXITSTATUS(status)) : env.Null());
  result.Set("signaled", Napi::Boolean::New(env, signaled));
  result.Set("signal", signaled ? Napi::Number::New(env, WTERMSIG(status)) : env.Null());
  return result;
}

// kill(pid, sig)
Napi::Value Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Only one process: 0 and negative pids address groups (and -1 every process).
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  int sig = IntArg(info, 1, "sig", 0, SIGRTMAX);
  if (kill(pid, sig) != 0) throw ErrnoError(env, errno, "kill");
  return env.Undefined();
}

}  // namespace

void InitProcess(Napi::Env env, Napi::Object exports) {
  exports.Set("spawn", Napi::Function::New(env, Spawn, "spawn"));
  exports.Set("waitpid", Napi::Function::New(env, WaitPid, "waitpid"));
  exports.Set("kill", Napi::Function::New(env, Kill, "kill"));
  exports.Set("WNOHANG", Napi::Number::New(env, WNOHANG));
}

}  // namespace croot
