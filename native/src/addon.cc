// croot's native addon: the few system calls Node cannot make itself. All
// policy lives in TypeScript (native/*.ts); see docs/native.md.
#include <napi.h>

#include "common.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  croot::InitPeerCredentials(env, exports);
  croot::InitHostname(env, exports);
  croot::InitFdTransfer(env, exports);
  croot::InitProcess(env, exports);
  croot::InitFdWatcher(env, exports);
  croot::InitStreamSocket(env, exports);
  croot::InitReplyCache(env, exports);
  croot::InitPidfd(env, exports);
  croot::InitInotify(env, exports);
  croot::InitLimits(env, exports);
  croot::InitUsers(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(croot_native, Init)
