// host/cpu_executor.h — runs the executor verbs on the host, in call order. The pointwise stages are
// the very cell_math.h functions the CUDA kernels run.
#pragma once

#include <memory>

#include "host/executor.h"

namespace dynrnn {

template <typename T>
std::unique_ptr<Executor<T>> make_cpu_executor();

}  // namespace dynrnn
