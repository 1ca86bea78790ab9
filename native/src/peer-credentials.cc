#include <errno.h>
#include <sys/socket.h>

#include "common.h"

namespace croot {

namespace {

// peerCredentials(fd) -> {pid, uid, gid}: SO_PEERCRED of a connected unix socket.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArg(info, 0, "fd");
  struct ucred cred = {};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) throw ErrnoError(env, errno, "getsockopt");
  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, static_cast<double>(cred.uid)));
  result.Set("gid", Napi::Number::New(env, static_cast<double>(cred.gid)));
  return result;
}

}  // namespace

void InitPeerCredentials(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
}

}  // namespace croot
