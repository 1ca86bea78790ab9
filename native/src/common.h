// Shared helpers of the croot addon: errno errors, argument checks, fd guards.
#pragma once

#include <napi.h>
#include <poll.h>

#include <string>
#include <vector>

namespace croot {

// A failed system call, recorded where it happened (possibly off the JS thread).
struct SysError {
  int err = 0;
  std::string syscall;
  std::string path;
  // What the failure means for croot, appended to the message (optional).
  std::string detail;
  bool failed() const { return err != 0; }
  void set(int e, const char* call, const std::string& p = std::string()) {
    err = e;
    syscall = call;
    path = p;
  }
};

// An Error with `code` ('ENOENT'), `errno` (positive) and `syscall` (and `path`
// when given); `detail`, when given, ends the message.
Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path = std::string(),
                       const std::string& detail = std::string());
inline Napi::Error ErrnoError(Napi::Env env, const SysError& e) {
  return ErrnoError(env, e.err, e.syscall, e.path, e.detail);
}

// A TypeError with code ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE.
Napi::Error ArgError(Napi::Env env, const std::string& message, bool wrongType = true);

// Argument readers; each throws an ArgError when the value does not fit.
int IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, long long min, long long max);
// An integer argument wider than int (up to 2^53), e.g. a uid or an inotify mask.
long long Int64Arg(const Napi::CallbackInfo& info, size_t i, const char* name, long long min, long long max);
int FdArg(const Napi::CallbackInfo& info, size_t i, const char* name);
std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name);
// The bytes of a Buffer / Uint8Array argument (not copied; valid during the call).
std::pair<const char*, size_t> BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name);

// Closes fd (ignoring EINTR, which on Linux still releases it) and keeps errno.
void CloseQuietly(int fd);

// poll(2) of `fds` with a zero timeout, EINTR retried: what poll returns
// (-1 with errno on failure). Safe off the JS thread and on the hot path.
int PollZero(struct pollfd* fds, nfds_t count);
// One PollZero of `fd` for `events`: the revents; throws the poll error.
short PollNow(Napi::Env env, int fd, short events);

// Owns one fd; closes it unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd = -1) : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  FdGuard(FdGuard&& other) noexcept : fd_(other.release()) {}
  FdGuard& operator=(FdGuard&& other) noexcept {
    reset(other.release());
    return *this;
  }
  ~FdGuard() { reset(); }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) CloseQuietly(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

void InitPeerCredentials(Napi::Env env, Napi::Object exports);
void InitHostname(Napi::Env env, Napi::Object exports);
void InitFdTransfer(Napi::Env env, Napi::Object exports);
void InitProcess(Napi::Env env, Napi::Object exports);
void InitFdWatcher(Napi::Env env, Napi::Object exports);
void InitStreamSocket(Napi::Env env, Napi::Object exports);
void InitReplyCache(Napi::Env env, Napi::Object exports);
void InitPidfd(Napi::Env env, Napi::Object exports);
void InitInotify(Napi::Env env, Napi::Object exports);
void InitLimits(Napi::Env env, Napi::Object exports);
void InitUsers(Napi::Env env, Napi::Object exports);

}  // namespace croot
