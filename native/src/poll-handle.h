// A uv_poll_t on Node's own loop, made and closed the one way the addon's
// event-loop objects (FdWatcher, StreamSocket) need.
#pragma once

#include <napi.h>
#include <uv.h>

namespace croot {

// A new uv_poll_t on `fd` on the environment's loop, its `data` set to
// `owner`, not started. Throws (nothing is left to free) when it cannot be made;
// `what` names the caller in the message.
uv_poll_t* NewPollHandle(Napi::Env env, int fd, void* owner, const char* what);

// Stops the poll and closes the handle; its memory is freed once libuv has
// closed it (a later loop turn). `data` is cleared first, so a callback
// already queued sees no owner.
void ClosePollHandle(uv_poll_t* handle);

}  // namespace croot
