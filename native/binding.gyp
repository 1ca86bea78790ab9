{
  "targets": [
    {
      "target_name": "croot_native",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/thread-job.cc",
        "src/peer-credentials.cc",
        "src/hostname.cc",
        "src/fd-transfer.cc",
        "src/process.cc",
        "src/poll-handle.cc",
        "src/fd-watcher.cc",
        "src/stream-socket.cc",
        "src/reply-cache.cc",
        "src/pidfd.cc",
        "src/inotify.cc",
        "src/limits.cc",
        "src/users.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_CPP_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions", "-O3"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-O3"],
      "cflags": ["-O2", "-fstack-protector-strong", "-Wall"],
      "cflags_cc": ["-std=c++17", "-fexceptions"],
      "configurations": {
        "Release": {
          "cflags!": ["-O3"],
          "cflags_cc!": ["-O3"]
        }
      }
    }
  ]
}
