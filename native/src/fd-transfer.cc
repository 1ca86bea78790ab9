// Unix-socket I/O with file descriptors attached (SCM_RIGHTS), plus the small
// fd helpers croot's client and tests need.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "common.h"
#include "thread-job.h"

namespace croot {

namespace {

// The kernel's limit of fds in one SCM_RIGHTS message (SCM_MAX_FD).
constexpr int kMaxFds = 253;
// How long sendWithFds waits for a full non-blocking socket before giving up.
constexpr int kSendWaitMs = 1000;
// The largest single receive.
constexpr long long kMaxRecvBytes = 64LL * 1024 * 1024;

long long NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<long long>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Waits until fd is ready for `events`; 1 = ready, 0 = timed out, -1 = error (errno set).
// timeoutMs < 0 waits forever. EINTR is retried with the remaining time.
int PollFor(int fd, short events, int timeoutMs) {
  long long deadline = timeoutMs < 0 ? -1 : NowMs() + timeoutMs;
  for (;;) {
    int wait = -1;
    if (deadline >= 0) {
      long long left = deadline - NowMs();
      wait = left > 0 ? static_cast<int>(left) : 0;
    }
    struct pollfd pfd = {fd, events, 0};
    int n = poll(&pfd, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) return 0;
    if (pfd.revents & POLLNVAL) {
      errno = EBADF;
      return -1;
    }
    return 1;  // Ready, or POLLHUP/POLLERR: the next call reports what happened.
  }
}

// sendWithFds(fd, data, fds) -> bytes sent, in one sendmsg with one SCM_RIGHTS message.
Napi::Value SendWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto bytes = BytesArg(info, 1, "data");
  if (!info[2].IsArray()) throw ArgError(env, "fds must be an array of file descriptors");
  Napi::Array list = info[2].As<Napi::Array>();
  uint32_t count = list.Length();
  if (count > static_cast<uint32_t>(kMaxFds)) throw ArgError(env, "at most 253 fds fit in one message", false);
  std::vector<int> fds;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value v = list.Get(i);
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
    if (!(d >= 0 && d <= INT_MAX && static_cast<double>(static_cast<int>(d)) == d)) {
      throw ArgError(env, "fds must be an array of non-negative integers", false);
    }
    fds.push_back(static_cast<int>(d));
  }
  if (bytes.second == 0 && !fds.empty()) {
    throw ArgError(env, "data must not be empty when fds are attached (a stream socket drops them)", false);
  }

  struct iovec iov = {const_cast<char*>(bytes.first), bytes.second};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    size_t payload = fds.size() * sizeof(int);
    control.assign(CMSG_SPACE(payload), 0);
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(payload);
    memcpy(CMSG_DATA(cmsg), fds.data(), payload);
  }

  long long deadline = NowMs() + kSendWaitMs;
  for (;;) {
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      long long left = deadline - NowMs();
      if (left > 0) {
        int ready = PollFor(fd, POLLOUT, static_cast<int>(left));
        if (ready > 0) continue;
        if (ready < 0) throw ErrnoError(env, errno, "poll");
      }
      throw ErrnoError(env, EAGAIN, "sendmsg");
    }
    throw ErrnoError(env, err, "sendmsg");
  }
}

// connectUnix(path) -> fd of a blocking, connected, close-on-exec SOCK_STREAM socket.
Napi::Value ConnectUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = StringArg(info, 0, "path");
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) throw ErrnoError(env, ENAMETOOLONG, "connect", path);
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  FdGuard fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw ErrnoError(env, errno, "socket");
  int rc = connect(fd.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno == EINTR) {
    // The connection goes on in the background: wait for it and collect its result.
    if (PollFor(fd.get(), POLLOUT, -1) < 0) throw ErrnoError(env, errno, "poll");
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) throw ErrnoError(env, errno, "getsockopt");
    if (err != 0) throw ErrnoError(env, err, "connect", path);
    rc = 0;
  }
  if (rc != 0) throw ErrnoError(env, errno, "connect", path);
  return Napi::Number::New(env, fd.release());
}

// send(fd, data) -> bytes sent, in one send(MSG_NOSIGNAL).
Napi::Value Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  auto bytes = BytesArg(info, 1, "data");
  for (;;) {
    ssize_t n = send(fd, bytes.first, bytes.second, MSG_NOSIGNAL);
    if (n >= 0) return Napi::Number::New(env, static_cast<double>(n));
    if (errno != EINTR) throw ErrnoError(env, errno, "send");
  }
}

// One poll + recvmsg on the job's own thread.
class RecvJob : public ThreadJob {
 public:
  RecvJob(Napi::Env env, int fd, size_t maxBytes, int timeoutMs)
      : ThreadJob(env), fd_(fd), max_(maxBytes), timeout_(timeoutMs) {}

  ~RecvJob() override {
    for (int fd : fds_) CloseQuietly(fd);
  }

  void Run() override {
    int ready = PollFor(fd_, POLLIN, timeout_);
    if (ready < 0) return error_.set(errno, "poll");
    if (ready == 0) return error_.set(ETIMEDOUT, "poll");
    data_.resize(max_);
    std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds), 0);
    struct iovec iov = {data_.data(), data_.size()};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n;
    do {
      n = recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      data_.clear();
      return error_.set(errno, "recvmsg");
    }
    data_.resize(static_cast<size_t>(n));
    if (msg.msg_controllen > 0) {
      for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char* p = CMSG_DATA(c);
        for (size_t i = 0; i < k; i++) {
          int fd;
          memcpy(&fd, p + i * sizeof(int), sizeof fd);
          fds_.push_back(fd);
        }
      }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
      // Some fds were dropped by the kernel: the message cannot be trusted. The destructor closes the rest.
      return error_.set(EMSGSIZE, "recvmsg");
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("data", Napi::Buffer<char>::Copy(env, data_.data(), data_.size()));
    Napi::Array fds = Napi::Array::New(env, fds_.size());
    for (size_t i = 0; i < fds_.size(); i++) fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, fds_[i]));
    result.Set("fds", fds);
    fds_.clear();  // From here on JS owns them.
    return result;
  }

 private:
  int fd_;
  size_t max_;
  int timeout_;
  std::vector<char> data_;
  std::vector<int> fds_;
};

// recvWithFds(fd, maxBytes, timeoutMs) -> Promise<{data, fds}>; timeoutMs -1 waits forever.
Napi::Value RecvWithFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int maxBytes = IntArg(info, 1, "maxBytes", 1, kMaxRecvBytes);
  int timeoutMs = IntArg(info, 2, "timeoutMs", -1, INT_MAX);
  return StartThreadJob(env, new RecvJob(env, fd, static_cast<size_t>(maxBytes), timeoutMs), "croot.recvWithFds");
}

// close(fd)
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  // On Linux the fd is released even when close reports EINTR: never retry.
  if (close(fd) != 0 && errno != EINTR) throw ErrnoError(env, errno, "close");
  return env.Undefined();
}

// pipe() -> [readFd, writeFd], both close-on-exec.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw ErrnoError(env, errno, "pipe2");
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, fds[0]));
  result.Set(1u, Napi::Number::New(env, fds[1]));
  return result;
}

// getFdFlags(fd) -> fcntl(F_GETFD), e.g. FD_CLOEXEC.
Napi::Value GetFdFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) throw ErrnoError(env, errno, "fcntl");
  return Napi::Number::New(env, flags);
}

// setFdFlags(fd, flags): fcntl(F_SETFD).
Napi::Value SetFdFlags(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  int flags = IntArg(info, 1, "flags", 0, INT_MAX);
  if (fcntl(fd, F_SETFD, flags) != 0) throw ErrnoError(env, errno, "fcntl");
  return env.Undefined();
}

}  // namespace

void InitFdTransfer(Napi::Env env, Napi::Object exports) {
  exports.Set("sendWithFds", Napi::Function::New(env, SendWithFds, "sendWithFds"));
  exports.Set("connectUnix", Napi::Function::New(env, ConnectUnix, "connectUnix"));
  exports.Set("send", Napi::Function::New(env, Send, "send"));
  exports.Set("recvWithFds", Napi::Function::New(env, RecvWithFds, "recvWithFds"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("pipe", Napi::Function::New(env, Pipe, "pipe"));
  exports.Set("getFdFlags", Napi::Function::New(env, GetFdFlags, "getFdFlags"));
  exports.Set("setFdFlags", Napi::Function::New(env, SetFdFlags, "setFdFlags"));
  exports.Set("FD_CLOEXEC", Napi::Number::New(env, FD_CLOEXEC));
}

}  // namespace croot
