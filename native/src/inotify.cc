// inotify, thinly: one non-blocking, close-on-exec instance per caller, watches
// added and removed by path and wd, events read and decoded into objects.
#include <errno.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "common.h"

namespace croot {

namespace {

// One read's buffer: room for at least one event with the longest name.
constexpr size_t kReadBytes = 64 * 1024;
static_assert(kReadBytes >= sizeof(struct inotify_event) + NAME_MAX + 1, "inotify buffer too small");

// inotifyInit() -> fd (IN_NONBLOCK | IN_CLOEXEC).
Napi::Value InotifyInit(const Napi::CallbackInfo& info) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw ErrnoError(info.Env(), errno, "inotify_init1");
  return Napi::Number::New(info.Env(), fd);
}

// inotifyAddWatch(fd, path, mask) -> wd. The same inode gets the same wd back.
Napi::Value InotifyAddWatch(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  std::string path = StringArg(info, 1, "path");
  auto mask = static_cast<uint32_t>(Int64Arg(info, 2, "mask", 1, UINT32_MAX));
  int wd = inotify_add_watch(fd, path.c_str(), mask);
  if (wd < 0) throw ErrnoError(info.Env(), errno, "inotify_add_watch", path);
  return Napi::Number::New(info.Env(), wd);
}

// inotifyRmWatch(fd, wd). EINVAL when the watch has already ended.
Napi::Value InotifyRmWatch(const Napi::CallbackInfo& info) {
  int fd = FdArg(info, 0, "fd");
  int wd = IntArg(info, 1, "wd", 0, INT_MAX);
  if (inotify_rm_watch(fd, wd) != 0) throw ErrnoError(info.Env(), errno, "inotify_rm_watch");
  return info.Env().Undefined();
}

// inotifyRead(fd) -> [{wd, mask, cookie, name}]: one read; [] when nothing is
// queued. `name` is '' for an event about the watched directory itself.
Napi::Value InotifyRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  alignas(struct inotify_event) static thread_local char buf[kReadBytes];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && errno != EAGAIN) throw ErrnoError(env, errno, "read");
  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  for (ssize_t off = 0; n > 0 && off + static_cast<ssize_t>(sizeof(struct inotify_event)) <= n;) {
    struct inotify_event ev;
    std::memcpy(&ev, buf + off, sizeof ev);
    const char* name = buf + off + sizeof ev;
    Napi::Object item = Napi::Object::New(env);
    item.Set("wd", Napi::Number::New(env, ev.wd));
    item.Set("mask", Napi::Number::New(env, ev.mask));
    item.Set("cookie", Napi::Number::New(env, ev.cookie));
    // The name is NUL-padded to `len`; names are bytes, decoded as UTF-8.
    item.Set("name", Napi::String::New(env, name, ev.len > 0 ? strnlen(name, ev.len) : 0));
    out.Set(count++, item);
    off += static_cast<ssize_t>(sizeof ev + ev.len);
  }
  return out;
}

}  // namespace

void InitInotify(Napi::Env env, Napi::Object exports) {
  exports.Set("inotifyInit", Napi::Function::New(env, InotifyInit, "inotifyInit"));
  exports.Set("inotifyAddWatch", Napi::Function::New(env, InotifyAddWatch, "inotifyAddWatch"));
  exports.Set("inotifyRmWatch", Napi::Function::New(env, InotifyRmWatch, "inotifyRmWatch"));
  exports.Set("inotifyRead", Napi::Function::New(env, InotifyRead, "inotifyRead"));
  Napi::Object masks = Napi::Object::New(env);
  masks.Set("ACCESS", Napi::Number::New(env, IN_ACCESS));
  masks.Set("MODIFY", Napi::Number::New(env, IN_MODIFY));
  masks.Set("ATTRIB", Napi::Number::New(env, IN_ATTRIB));
  masks.Set("CLOSE_WRITE", Napi::Number::New(env, IN_CLOSE_WRITE));
  masks.Set("MOVED_FROM", Napi::Number::New(env, IN_MOVED_FROM));
  masks.Set("MOVED_TO", Napi::Number::New(env, IN_MOVED_TO));
  masks.Set("CREATE", Napi::Number::New(env, IN_CREATE));
  masks.Set("DELETE", Napi::Number::New(env, IN_DELETE));
  masks.Set("DELETE_SELF", Napi::Number::New(env, IN_DELETE_SELF));
  masks.Set("MOVE_SELF", Napi::Number::New(env, IN_MOVE_SELF));
  masks.Set("UNMOUNT", Napi::Number::New(env, IN_UNMOUNT));
  masks.Set("Q_OVERFLOW", Napi::Number::New(env, IN_Q_OVERFLOW));
  masks.Set("IGNORED", Napi::Number::New(env, IN_IGNORED));
  masks.Set("ONLYDIR", Napi::Number::New(env, IN_ONLYDIR));
  masks.Set("DONT_FOLLOW", Napi::Number::New(env, IN_DONT_FOLLOW));
  masks.Set("EXCL_UNLINK", Napi::Number::New(env, IN_EXCL_UNLINK));
  masks.Set("ISDIR", Napi::Number::New(env, IN_ISDIR));
  exports.Set("IN", masks);
}

}  // namespace croot
