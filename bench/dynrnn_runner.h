// bench/dynrnn_runner.h — dynrnn through its public API (Rnn::create, size queries, forward,
// backward) on either backend, with buffers from an Arena.
#pragma once

#include <functional>
#include <memory>

#include "bench/arena.h"
#include "bench/problem.h"
#include "bench/types.h"

namespace bench {

/// Creates the handle and every buffer (outside any timed region). `stream` is the cudaStream_t
/// for Backend::kCuda (ignored by kCpu). `training`: allocate the reserve and gradient buffers.
/// Buffers hold the storage type of `prec` (bf16/fp16: 2-byte elements). Throws BenchError on any
/// non-OK status. `edit` changes the spec that the shape and precision give (a variant's knobs).
/// On the device, the lengths go to dynrnn in host_sequence_length too unless `host_lengths` is false
/// (then dynrnn runs all T steps over the whole batch, masked, as without them).
using SpecEdit = std::function<void(dynrnn::RnnSpec&)>;
std::unique_ptr<Runner> make_dynrnn_runner(const Problem& p, Precision prec, dynrnn::Backend backend, Arena* arena,
                                           dynrnn::Stream stream, bool training, const SpecEdit& edit = {},
                                           bool host_lengths = true);

}  // namespace bench
