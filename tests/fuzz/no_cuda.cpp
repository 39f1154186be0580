// The fuzzer builds the host sources without CUDA: Backend::kCuda reports kNotSupported.
#include "host/cuda_executor.h"
#include "host/element_types.h"

namespace dynrnn {

template <typename T>
Status make_cuda_executor(MathMode, RecurrentAlgorithm, std::unique_ptr<Executor<T>>* out) {
  if (out) out->reset();
  return Status(StatusCode::kNotSupported, "this build of dynrnn has no CUDA backend (fuzzing build)");
}

#define DYNRNN_INSTANTIATE(T) \
  template Status make_cuda_executor<T>(MathMode, RecurrentAlgorithm, std::unique_ptr<Executor<T>>*);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace dynrnn
