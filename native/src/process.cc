// Starting, reaping and signalling processes for the privileged process service.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <string>
#include <vector>

#include "common.h"

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

class FileActions {
 public:
  FileActions() { posix_spawn_file_actions_init(&fa_); }
  ~FileActions() { posix_spawn_file_actions_destroy(&fa_); }
  posix_spawn_file_actions_t* get() { return &fa_; }

 private:
  posix_spawn_file_actions_t fa_;
};

class SpawnAttr {
 public:
  SpawnAttr() { posix_spawnattr_init(&attr_); }
  ~SpawnAttr() { posix_spawnattr_destroy(&attr_); }
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

void Check(Napi::Env env, int rc, const char* call) {
  if (rc != 0) throw ErrnoError(env, rc, call);
}

// spawn(file, argv, envp, {stdin, stdout, stderr}) -> pid
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = StringArg(info, 0, "file");
  std::vector<std::string> argv = StringArray(env, info[1], "argv");
  std::vector<std::string> envp = StringArray(env, info[2], "envp");
  Napi::Object stdio = info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  const char* names[3] = {"stdin", "stdout", "stderr"};
  int sources[3];
  for (int i = 0; i < 3; i++) sources[i] = StdioFd(env, stdio, names[i]);

  // Copy each source above 2 first, so no dup2 onto 0/1/2 can clobber a later
  // source (e.g. stdout given as 0). The copies are close-on-exec.
  FdGuard copies[3];
  for (int i = 0; i < 3; i++) {
    if (sources[i] < 0) continue;
    int fd = fcntl(sources[i], F_DUPFD_CLOEXEC, 3);
    if (fd < 0) throw ErrnoError(env, errno, "fcntl");
    copies[i].reset(fd);
  }

  FileActions actions;
  for (int i = 0; i < 3; i++) {
    if (copies[i].get() >= 0) {
      Check(env, posix_spawn_file_actions_adddup2(actions.get(), copies[i].get(), i), "posix_spawn_file_actions_adddup2");
    } else {
      Check(env, posix_spawn_file_actions_addopen(actions.get(), i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0),
            "posix_spawn_file_actions_addopen");
    }
  }
  Check(env, posix_spawn_file_actions_addclosefrom_np(actions.get(), 3), "posix_spawn_file_actions_addclosefrom_np");

  // Node blocks and ignores some signals (SIGPIPE, ...): the child starts clean.
  SpawnAttr attr;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  Check(env, posix_spawnattr_setsigmask(attr.get(), &none), "posix_spawnattr_setsigmask");
  Check(env, posix_spawnattr_setsigdefault(attr.get(), &all), "posix_spawnattr_setsigdefault");
  Check(env, posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
        "posix_spawnattr_setflags");

  std::vector<char*> argvp = NullTerminated(argv);
  std::vector<char*> envpp = NullTerminated(envp);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, file.c_str(), actions.get(), attr.get(), argvp.data(), envpp.data());
  if (rc != 0) throw ErrnoError(env, rc, "posix_spawn", file);
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
