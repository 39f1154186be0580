// The fuzzer builds the host sources without CUDA: Backend::kCuda reports kNotSupported.
#include "host/cuda_executor.h"

namespace dynrnn {

template <typename T>
Status make_cuda_executor(MathMode, std::unique_ptr<Executor<T>>* out) {
  if (out) out->reset();
  return Status(StatusCode::kNotSupported, "this build of dynrnn has no CUDA backend (fuzzing build)");
}

template Status make_cuda_executor<float>(MathMode, std::unique_ptr<Executor<float>>*);
template Status make_cuda_executor<double>(MathMode, std::unique_ptr<Executor<double>>*);

}  // namespace dynrnn
