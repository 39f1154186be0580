// bench/graph_runner.h — replays another runner's calls as CUDA graphs: each (mode, input set) is
// captured on its first run and launched as one graph afterwards, which takes the host out of the
// per-step launch loop (performance.md §4, technique 3). dynrnn promises to be capturable.
#pragma once

#include <cuda_runtime.h>

#include <memory>

#include "bench/types.h"

namespace bench {

std::unique_ptr<Runner> make_graph_runner(std::unique_ptr<Runner> inner, cudaStream_t stream);

}  // namespace bench
