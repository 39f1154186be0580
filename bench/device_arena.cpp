#include "bench/device_arena.h"

#include <vector>

#include "bench/cuda_check.h"

namespace bench {
namespace {

class DeviceArena final : public Arena {
 public:
  explicit DeviceArena(cudaStream_t stream) : stream_(stream) {}
  ~DeviceArena() override {
    (void)cudaStreamSynchronize(stream_);
    for (void* p : blocks_) (void)cudaFree(p);
    for (void* p : host_blocks_) (void)cudaFreeHost(p);
    (void)cudaGetLastError();
  }

  void* alloc_bytes(size_t bytes) override {
    void* p = nullptr;
    const size_t n = bytes > 0 ? bytes : 1;
    const cudaError_t e = cudaMalloc(&p, n);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw BenchError("cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorName(e) +
                       " (device memory in use: " + std::to_string(device_bytes_in_use() >> 20) + " MiB)");
    }
    blocks_.push_back(p);
    BENCH_CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream_));
    allocated_ += bytes;
    return p;
  }

  void* alloc_host_bytes(size_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaHostAlloc(&p, bytes > 0 ? bytes : 1, cudaHostAllocDefault);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      throw BenchError("cudaHostAlloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorName(e));
    }
    host_blocks_.push_back(p);
    return p;
  }

  void upload(void* dst, const void* src, size_t bytes) override {
    BENCH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    BENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));  // src is pageable host memory the caller may free
  }

  void download(void* dst, const void* src, size_t bytes) override {
    BENCH_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    BENCH_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void sync() override { BENCH_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  bool on_device() const override { return true; }

 private:
  cudaStream_t stream_;
  std::vector<void*> blocks_;
  std::vector<void*> host_blocks_;
};

}  // namespace

std::unique_ptr<Arena> make_device_arena(cudaStream_t stream) {
  return std::make_unique<DeviceArena>(stream);
}

size_t device_bytes_in_use() {
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return total_b - free_b;
}

}  // namespace bench
