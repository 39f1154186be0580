// GPU test plumbing shared by the GPU test files: device detection (tests skip without a device and
// never fail for that reason) and CUDA error checks that throw with the call's text.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace testing_support {

inline bool gpu_available() {
  static const bool available = [] {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return n > 0;
  }();
  return available;
}

inline void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    throw std::runtime_error(std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
  }
}

}  // namespace testing_support

#define REQUIRE_GPU()                                                                               \
  do {                                                                                              \
    if (!::testing_support::gpu_available()) GTEST_SKIP() << "no CUDA device (cudaGetDeviceCount)"; \
  } while (0)

#define CUDA_OK(expr) ::testing_support::cuda_ok((expr), #expr)
