#include "poll-handle.h"

#include <memory>

#include "common.h"

namespace croot {

uv_poll_t* NewPollHandle(Napi::Env env, int fd, void* owner, const char* what) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw Napi::Error::New(env, std::string(what) + ": no libuv loop in this environment");
  }
  auto handle = std::make_unique<uv_poll_t>();
  int rc = uv_poll_init(loop, handle.get(), fd);
  if (rc < 0) throw ErrnoError(env, -rc, "uv_poll_init");
  handle->data = owner;
  return handle.release();
}

void ClosePollHandle(uv_poll_t* handle) {
  uv_poll_stop(handle);
  handle->data = nullptr;
  // The handle's memory must outlive the close, which libuv completes on a later loop turn.
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
}

}  // namespace croot
