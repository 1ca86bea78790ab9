#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <climits>
#include <cmath>

#include "common.h"

namespace croot {

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& syscall, const std::string& path,
                       const std::string& detail) {
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  std::string code = name != nullptr ? name : "E" + std::to_string(err);
  std::string message = syscall;
  if (!path.empty()) message += " " + path;
  message += ": ";
  message += desc != nullptr ? desc : "unknown error";
  message += " (" + code + ")";
  if (!detail.empty()) message += ": " + detail;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  return error;
}

Napi::Error ArgError(Napi::Env env, const std::string& message, bool wrongType) {
  Napi::Error error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, wrongType ? "ERR_INVALID_ARG_TYPE" : "ERR_INVALID_ARG_VALUE"));
  return error;
}

int IntArg(const Napi::CallbackInfo& info, size_t i, const char* name, long long min, long long max) {
  return static_cast<int>(Int64Arg(info, i, name, min, max));
}

long long Int64Arg(const Napi::CallbackInfo& info, size_t i, const char* name, long long min, long long max) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) throw ArgError(info.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= static_cast<double>(min) && d <= static_cast<double>(max) && std::floor(d) == d)) {
    throw ArgError(info.Env(),
                   std::string(name) + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max),
                   false);
  }
  return static_cast<long long>(d);
}

int FdArg(const Napi::CallbackInfo& info, size_t i, const char* name) { return IntArg(info, i, name, 0, INT_MAX); }

std::string StringArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsString()) throw ArgError(info.Env(), std::string(name) + " must be a string");
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.find('\0') != std::string::npos) throw ArgError(info.Env(), std::string(name) + " must not contain NUL", false);
  return s;
}

std::pair<const char*, size_t> BytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw ArgError(info.Env(), std::string(name) + " must be a Buffer or Uint8Array");
  }
  Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();
  return {reinterpret_cast<const char*>(bytes.Data()), bytes.ByteLength()};
}

void CloseQuietly(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

int PollZero(struct pollfd* fds, nfds_t count) {
  int n;
  do {
    n = poll(fds, count, 0);
  } while (n < 0 && errno == EINTR);
  return n;
}

short PollNow(Napi::Env env, int fd, short events) {
  struct pollfd pfd = {fd, events, 0};
  if (PollZero(&pfd, 1) < 0) throw ErrnoError(env, errno, "poll");
  return pfd.revents;
}

}  // namespace croot
