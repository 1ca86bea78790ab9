// User lookups through NSS (getpwnam_r, getpwuid_r, getpwent_r): the same
// answers `getent passwd` gives, from files, systemd, sssd or LDAP. They may
// block on a remote directory; callers use them at start and reload only.
#include <errno.h>
#include <pwd.h>
#include <unistd.h>

#include <vector>

#include "common.h"

namespace croot {

namespace {

// Buffers start here and double on ERANGE up to kMaxBuffer.
constexpr size_t kMinBuffer = 1024;
constexpr size_t kMaxBuffer = 1 << 20;
constexpr long long kMaxUid = 4294967294LL;  // (uid_t)-1 means "no user"

size_t InitialBufferSize() {
  long size = sysconf(_SC_GETPW_R_SIZE_MAX);
  return size > 0 && static_cast<size_t>(size) > kMinBuffer ? static_cast<size_t>(size) : kMinBuffer;
}

Napi::Object UserObject(Napi::Env env, const struct passwd& pw) {
  Napi::Object user = Napi::Object::New(env);
  user.Set("name", Napi::String::New(env, pw.pw_name != nullptr ? pw.pw_name : ""));
  user.Set("uid", Napi::Number::New(env, static_cast<double>(pw.pw_uid)));
  user.Set("gid", Napi::Number::New(env, static_cast<double>(pw.pw_gid)));
  user.Set("home", Napi::String::New(env, pw.pw_dir != nullptr ? pw.pw_dir : ""));
  user.Set("shell", Napi::String::New(env, pw.pw_shell != nullptr ? pw.pw_shell : ""));
  return user;
}

// Runs one reentrant lookup, growing the buffer on ERANGE. Null when there is
// no such user (glibc: 0 and no result; some NSS modules: ENOENT or ESRCH).
template <typename Lookup>
Napi::Value FindUser(Napi::Env env, const char* call, Lookup lookup) {
  std::vector<char> buf(InitialBufferSize());
  for (;;) {
    struct passwd pw = {};
    struct passwd* found = nullptr;
    int rc;
    do {
      rc = lookup(&pw, buf.data(), buf.size(), &found);
    } while (rc == EINTR);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc == 0 && found != nullptr) return UserObject(env, pw);
    if (rc == 0 || rc == ENOENT || rc == ESRCH) return env.Null();
    throw ErrnoError(env, rc, call);
  }
}

// getUserByName(name) -> {name, uid, gid, home, shell} | null
Napi::Value GetUserByName(const Napi::CallbackInfo& info) {
  std::string name = StringArg(info, 0, "name");
  return FindUser(info.Env(), "getpwnam_r", [&](struct passwd* pw, char* buf, size_t len, struct passwd** found) {
    return getpwnam_r(name.c_str(), pw, buf, len, found);
  });
}

// getUserById(uid) -> {name, uid, gid, home, shell} | null
Napi::Value GetUserById(const Napi::CallbackInfo& info) {
  auto uid = static_cast<uid_t>(Int64Arg(info, 0, "uid", 0, kMaxUid));
  return FindUser(info.Env(), "getpwuid_r", [&](struct passwd* pw, char* buf, size_t len, struct passwd** found) {
    return getpwuid_r(uid, pw, buf, len, found);
  });
}

// Ends an enumeration on every path.
struct PasswdEnumeration {
  PasswdEnumeration() { setpwent(); }
  ~PasswdEnumeration() { endpwent(); }
};

// listUsers() -> [{name, uid, gid, home, shell}]: every user NSS enumerates
// (sssd and LDAP may enumerate only some of them, or none).
Napi::Value ListUsers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array users = Napi::Array::New(env);
  uint32_t count = 0;
  std::vector<char> buf(InitialBufferSize());
  PasswdEnumeration enumeration;
  for (;;) {
    struct passwd pw = {};
    struct passwd* found = nullptr;
    int rc = getpwent_r(&pw, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < kMaxBuffer) {
      // glibc keeps its place on ERANGE: the same entry is read again.
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc == EINTR) continue;
    if (rc == ENOENT || (rc == 0 && found == nullptr)) break;
    if (rc != 0) throw ErrnoError(env, rc, "getpwent_r");
    users.Set(count++, UserObject(env, pw));
  }
  return users;
}

}  // namespace

void InitUsers(Napi::Env env, Napi::Object exports) {
  exports.Set("getUserByName", Napi::Function::New(env, GetUserByName, "getUserByName"));
  exports.Set("getUserById", Napi::Function::New(env, GetUserById, "getUserById"));
  exports.Set("listUsers", Napi::Function::New(env, ListUsers, "listUsers"));
}

}  // namespace croot
