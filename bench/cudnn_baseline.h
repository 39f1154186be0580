// bench/cudnn_baseline.h — cuDNN's RNN through its C API (cudnnSetRNNDescriptor_v8,
// cudnnRNNForward, cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8) in one of two data layouts
// (padded, or packed as PyTorch feeds cuDNN a PackedSequence), weights mapped from TF's layout
// (bench/cudnn_mapping.h). Built only when CMake found cuDNN (DYNRNN_BENCH_HAVE_CUDNN).
#pragma once

#include <cuda_runtime.h>

#include <memory>
#include <string>
#include <vector>

#include "bench/arena.h"
#include "bench/problem.h"
#include "bench/types.h"

namespace bench {

/// How the batch reaches cuDNN.
///  kPadded: [T, B, W] in batch order, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_UNPACKED with
///           CUDNN_RNN_PADDED_IO_ENABLED and paddingFill 0 (outputs are zero past each length).
///  kPacked: sorted by length and packed (bench/packed_layout.h), CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED
///           with CUDNN_RNN_PADDED_IO_DISABLED, as PyTorch runs a PackedSequence. The inputs and
///           upstream gradients are packed once at setup, outside any timed call (a PyTorch user
///           packs once in the data loader); fetch() unpacks and unsorts the results.
enum class CudnnLayout { kPadded, kPacked };

/// The algorithms tried per shape, in this order (STANDARD first).
const std::vector<int>& cudnn_algorithms();
const char* cudnn_algorithm_name(int algo);

/// One cuDNN handle bound to the bench stream, created once per process.
class CudnnSession {
 public:
  /// Throws BenchError when the handle cannot be created (e.g. the library is missing pieces).
  explicit CudnnSession(cudaStream_t stream);
  ~CudnnSession();
  CudnnSession(const CudnnSession&) = delete;
  CudnnSession& operator=(const CudnnSession&) = delete;

  /// "9.19.0" (run-time library) and "9.19.0" (headers).
  static std::string runtime_version();
  static std::string header_version();

  struct Impl;
  Impl* impl() const { return impl_.get(); }
  cudaStream_t stream() const;

 private:
  std::unique_ptr<Impl> impl_;
};

/// A cuDNN RNN set up for one problem, precision, algorithm and layout (descriptors, weight space
/// filled from the TF weights, work/reserve space). Throws BenchError (with cuDNN's status name)
/// when the combination is not supported, BenchUnsupported for a batch the packed layout cannot
/// hold (packed_unsupported_reason).
std::unique_ptr<Runner> make_cudnn_runner(const Problem& p, Precision prec, int algo, CudnnLayout layout, bool training,
                                          CudnnSession& session, Arena* arena);

/// Median microseconds of one cuDNN LSTM inference call with T = 1, B = 1, I = H = 64 (STANDARD):
/// the per-call fixed cost (performance.md §3.4 item 3).
double cudnn_t1_fixed_cost_us(CudnnSession& session, Arena* arena);

}  // namespace bench
