// pidfds (a handle on one process that a reused PID can never match) and the
// epoll set that holds them, so one FdWatcher learns of every exit.
#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "common.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace croot {

namespace {

// The largest key epollAdd accepts: every integer up to it is exact in a JS number.
constexpr long long kMaxKey = (1LL << 53) - 1;
constexpr int kMaxEvents = 4096;

// pidfdOpen(pid) -> pidfd. The kernel makes every pidfd close-on-exec.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  int pid = IntArg(info, 0, "pid", 1, INT_MAX);
  long fd;
  do {
    fd = syscall(SYS_pidfd_open, pid, 0);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "pidfd_open");
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// pidfdIsAlive(pidfd) -> boolean. A pidfd polls readable once its process has
// exited, zombie or reaped; one poll with a zero timeout.
Napi::Value PidfdIsAlive(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "pidfd");
  short revents = PollNow(info.Env(), fd, POLLIN);
  if (revents & POLLNVAL) throw ErrnoError(info.Env(), EBADF, "poll");
  return Napi::Boolean::New(info.Env(), revents == 0);
}

// epollCreate() -> epfd (EPOLL_CLOEXEC).
Napi::Value EpollCreate(const Napi::CallbackInfo& info) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "epoll_create1");
  return Napi::Number::New(info.Env(), fd);
}

// epollAdd(epfd, fd, key): level-triggered EPOLLIN; epollWait reports `key`.
Napi::Value EpollAdd(const Napi::CallbackInfo& info) {
  int epfd = FdArg(info, 0, "epfd");
  int fd = FdArg(info, 1, "fd");
  long long key = Int64Arg(info, 2, "key", 0, kMaxKey);
  struct epoll_event ev = {};
  ev.events = EPOLLIN;
  ev.data.u64 = static_cast<uint64_t>(key);
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) throw ErrnoError(info.Env(), errno, "epoll_ctl");
  return info.Env().Undefined();
}

// epollRemove(epfd, fd). A removed fd is never reported again, even if it was ready.
Napi::Value EpollRemove(const Napi::CallbackInfo& info) {
  int epfd = FdArg(info, 0, "epfd");
  int fd = FdArg(info, 1, "fd");
  if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr) != 0) throw ErrnoError(info.Env(), errno, "epoll_ctl");
  return info.Env().Undefined();
}

// epollWait(epfd, maxEvents) -> keys of the ready fds; never waits (timeout 0).
Napi::Value EpollWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int epfd = FdArg(info, 0, "epfd");
  int max = IntArg(info, 1, "maxEvents", 1, kMaxEvents);
  std::vector<struct epoll_event> events(static_cast<size_t>(max));
  int n;
  do {
    n = epoll_wait(epfd, events.data(), max, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw ErrnoError(env, errno, "epoll_wait");
  Napi::Array keys = Napi::Array::New(env, static_cast<size_t>(n));
  for (int i = 0; i < n; i++) keys.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(events[i].data.u64)));
  return keys;
}

}  // namespace

void InitPidfd(Napi::Env env, Napi::Object exports) {
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdIsAlive", Napi::Function::New(env, PidfdIsAlive, "pidfdIsAlive"));
  exports.Set("epollCreate", Napi::Function::New(env, EpollCreate, "epollCreate"));
  exports.Set("epollAdd", Napi::Function::New(env, EpollAdd, "epollAdd"));
  exports.Set("epollRemove", Napi::Function::New(env, EpollRemove, "epollRemove"));
  exports.Set("epollWait", Napi::Function::New(env, EpollWait, "epollWait"));
}

}  // namespace croot
