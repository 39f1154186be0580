// bench/arena.h — where a runner's buffers live: host memory (CPU path) or device memory (GPU
// path). Runners are written once against this interface, so the CPU path exercises the same
// setup, upload, run and download logic that the GPU path uses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "bench/types.h"

namespace bench {

class Arena {
 public:
  virtual ~Arena() = default;
  /// Zero-filled buffer owned by the arena (freed with it). Throws BenchError on failure.
  virtual void* alloc_bytes(size_t bytes) = 0;
  /// Host memory the device can copy to and from asynchronously (pinned on a GPU; swap_memory's
  /// host_reserve), owned by the arena. Throws BenchError on failure.
  virtual void* alloc_host_bytes(size_t bytes) = 0;
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  /// Waits for queued work first (GPU), then copies.
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  /// Waits for all queued work (no-op on the host).
  virtual void sync() = 0;
  virtual bool on_device() const = 0;
  /// Bytes allocated so far.
  size_t allocated() const { return allocated_; }

  template <typename T>
  T* alloc(int64_t count) {
    return static_cast<T*>(alloc_bytes(static_cast<size_t>(count > 0 ? count : 0) * sizeof(T)));
  }
  /// Casts a double vector to T and copies it into a new buffer.
  template <typename T>
  T* upload_as(const std::vector<double>& v) {
    T* p = alloc<T>(static_cast<int64_t>(v.size()));
    if (!v.empty()) {
      std::vector<T> tmp(v.begin(), v.end());
      upload(p, tmp.data(), tmp.size() * sizeof(T));
    }
    return p;
  }
  template <typename T>
  std::vector<double> download_as(const T* p, int64_t count) {
    std::vector<T> tmp(static_cast<size_t>(count > 0 ? count : 0));
    if (!tmp.empty()) download(tmp.data(), p, tmp.size() * sizeof(T));
    return std::vector<double>(tmp.begin(), tmp.end());
  }

 protected:
  size_t allocated_ = 0;
};

std::unique_ptr<Arena> make_host_arena();

}  // namespace bench
