#include "bench/gpu_timing.h"

#include "bench/cuda_check.h"

namespace bench {
namespace {

struct Events {
  std::vector<cudaEvent_t> ev;
  ~Events() {
    for (cudaEvent_t e : ev) (void)cudaEventDestroy(e);
  }
};

}  // namespace

std::vector<double> time_gpu_ms(cudaStream_t stream, int warmup, int iters, const std::function<void(int)>& fn) {
  Events events;
  events.ev.reserve(static_cast<size_t>(2 * iters));
  for (int i = 0; i < 2 * iters; ++i) {
    cudaEvent_t e = nullptr;
    BENCH_CUDA_CHECK(cudaEventCreate(&e));
    events.ev.push_back(e);
  }
  for (int i = 0; i < warmup; ++i) fn(i);
  BENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int i = 0; i < iters; ++i) {
    BENCH_CUDA_CHECK(cudaEventRecord(events.ev[2 * i], stream));
    fn(i);
    BENCH_CUDA_CHECK(cudaEventRecord(events.ev[2 * i + 1], stream));
  }
  BENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> ms(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    float t = 0;
    BENCH_CUDA_CHECK(cudaEventElapsedTime(&t, events.ev[2 * i], events.ev[2 * i + 1]));
    ms[static_cast<size_t>(i)] = t;
  }
  return ms;
}

}  // namespace bench
