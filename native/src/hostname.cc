#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <unistd.h>

#include <string>

#include "common.h"
#include "thread-job.h"

namespace croot {

namespace {

// Enters the UTS namespace of `pid` on its own thread and reads the hostname
// there. The thread ends right after, so the namespace switch dies with it.
class HostnameJob : public ThreadJob {
 public:
  HostnameJob(Napi::Env env, int pid) : ThreadJob(env), pid_(pid) {}

  void Run() override {
    std::string path = "/proc/" + std::to_string(pid_) + "/ns/uts";
    int fd;
    do {
      fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) return error_.set(errno, "open", path);
    FdGuard guard(fd);
    if (setns(fd, CLONE_NEWUTS) != 0) return error_.set(errno, "setns", path);
    guard.reset();
    char name[HOST_NAME_MAX + 1] = {};
    if (gethostname(name, sizeof name - 1) != 0) return error_.set(errno, "gethostname");
    hostname_ = name;
  }

  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, hostname_); }

 private:
  int pid_;
  std::string hostname_;
};

// readHostname(pid) -> Promise<string>
Napi::Value ReadHostname(const Napi::CallbackInfo& info) {
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  return StartThreadJob(info.Env(), new HostnameJob(info.Env(), pid), "croot.readHostname");
}

}  // namespace

void InitHostname(Napi::Env env, Napi::Object exports) {
  exports.Set("readHostname", Napi::Function::New(env, ReadHostname, "readHostname"));
}

}  // namespace croot
