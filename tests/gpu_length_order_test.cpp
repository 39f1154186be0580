// The device's length order (cuda/reductions.h, one thread per row counting the rows ahead of it) is
// the host's (host/length_order.h): the batch sorted by a GPU call must be the one whose running rows
// the host sized the steps' GEMMs for. Random lengths with many ties, negatives and lengths past T.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "cuda/reductions.h"
#include "gpu_support.h"
#include "host/length_order.h"

namespace {

TEST(GpuLengthOrder, DeviceOrderIsTheHostOrder) {
  REQUIRE_GPU();
  std::mt19937 rng(11);
  const int64_t T = 20;
  for (int64_t B : {1, 2, 7, 300, 1000}) {
    SCOPED_TRACE("B = " + std::to_string(B));
    std::vector<int32_t> len(static_cast<size_t>(B));
    for (int32_t& l : len) l = static_cast<int32_t>(rng() % (T + 7)) - 3;
    int32_t *d_len = nullptr, *d_rows = nullptr, *d_sorted = nullptr;
    const size_t bytes = len.size() * sizeof(int32_t);
    CUDA_OK(cudaMalloc(&d_len, bytes));
    CUDA_OK(cudaMalloc(&d_rows, bytes));
    CUDA_OK(cudaMalloc(&d_sorted, bytes));
    CUDA_OK(cudaMemcpy(d_len, len.data(), bytes, cudaMemcpyHostToDevice));
    ASSERT_TRUE(dynrnn::cuda_detail::order_by_length(d_len, B, T, d_rows, d_sorted, nullptr).is_ok());
    std::vector<int32_t> rows(len.size()), sorted(len.size());
    CUDA_OK(cudaMemcpy(rows.data(), d_rows, bytes, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(sorted.data(), d_sorted, bytes, cudaMemcpyDeviceToHost));
    for (int32_t* p : {d_len, d_rows, d_sorted}) CUDA_OK(cudaFree(p));
    EXPECT_EQ(rows, dynrnn::length_order(len.data(), B, T));
    for (size_t k = 0; k < rows.size(); ++k) EXPECT_EQ(sorted[k], len[static_cast<size_t>(rows[k])]) << k;
  }
}

}  // namespace
