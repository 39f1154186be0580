// Test entry point: reports whether a CUDA device is present; GPU tests skip without one.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdio>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  std::printf("dynrnn tests: %d CUDA device(s); GPU tests %s\n", devices, devices > 0 ? "run" : "are skipped");
  return RUN_ALL_TESTS();
}
