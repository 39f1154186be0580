// The shape of the work the CUDA executor issues, counted on the emulated device: per time step of a
// forward, one recurrent GEMM and one fused kernel per cell (two of each for TF's GRU, whose
// candidate GEMM needs the reset gate, and for an LSTM with a projection); per step of a backward,
// one fused backward kernel and one recurrent-gradient GEMM per GEMM of the forward (plus the GRU's
// and the projection's); and within forward and backward no synchronization, no allocation and no
// stream or event creation — the calls are capturable and cost no host round trip.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fault_configurations.h"
#include "hooks.h"
#include "host/element_types.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using testing_support::CallBuffers;

struct Counts {
  std::map<std::string, int64_t> forward, backward;
};

/// Mirrors a CallBuffers onto the device and counts the calls of one training forward and one
/// backward (the second of each: the first may size the handle's pools).
template <typename E>
Counts count_calls(const RnnSpec& spec, int64_t T, bool with_lengths) {
  constexpr size_t kE = sizeof(E);
  std::unique_ptr<Rnn> rnn;
  EXPECT_TRUE(Rnn::create(spec, Backend::kCuda, &rnn).is_ok());
  CallBuffers<E> h(*rnn, T, /*B=*/3, spec.time_major);
  h.set_sine_problem(*rnn);
  if (!with_lengths) h.len.clear();  // every row runs T steps
  std::vector<void*> allocations;
  const auto device = [&](const void* src, size_t bytes) -> void* {
    if (bytes == 0) return nullptr;
    void* d = nullptr;
    EXPECT_EQ(cudaMalloc(&d, bytes), cudaSuccess);
    if (src != nullptr) EXPECT_EQ(cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    allocations.push_back(d);
    return d;
  };
  dynrnn::ForwardArgs f = h.forward_args();
  f.x = device(h.x.data(), h.x.size() * kE);
  f.initial_state = device(h.init.data(), h.init.size() * kE);
  f.weights = device(h.w.data(), h.w.size() * kE);
  f.outputs = device(nullptr, h.out.size() * kE);
  f.outputs_bw = device(nullptr, h.out_bw.size() * kE);
  f.final_state = device(nullptr, h.fin.size() * kE);
  f.workspace = device(nullptr, h.ws.size());
  f.reserve = device(nullptr, h.rs.size());
  f.sequence_length = static_cast<const int32_t*>(device(h.len.data(), h.len.size() * sizeof(int32_t)));
  void* pinned = nullptr;
  if (!h.hrs.empty()) EXPECT_EQ(cudaHostAlloc(&pinned, h.hrs.size(), cudaHostAllocDefault), cudaSuccess);
  f.host_reserve = pinned;
  dynrnn::BackwardArgs b = h.backward_args();
  b.x = f.x;
  b.initial_state = f.initial_state;
  b.weights = f.weights;
  b.grad_outputs = device(h.dout.data(), h.dout.size() * kE);
  b.grad_outputs_bw = device(h.dout_bw.data(), h.dout_bw.size() * kE);
  b.grad_final_state = device(h.dfin.data(), h.dfin.size() * kE);
  b.grad_inputs = device(nullptr, h.dx.size() * kE);
  b.grad_initial_state = device(nullptr, h.dinit.size() * kE);
  b.grad_weights = device(nullptr, h.dw.size() * kE);
  b.workspace = f.workspace;
  b.reserve = f.reserve;
  b.sequence_length = f.sequence_length;
  b.host_reserve = f.host_reserve;
  Counts c;
  for (int call = 0; call < 2; ++call) {
    cuda_emulation::reset_call_counts();
    EXPECT_TRUE(rnn->forward(f).is_ok());
    c.forward = cuda_emulation::call_counts();
    cuda_emulation::reset_call_counts();
    EXPECT_TRUE(rnn->backward(b).is_ok());
    c.backward = cuda_emulation::call_counts();
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (void* p : allocations) EXPECT_EQ(cudaFree(p), cudaSuccess);
  if (pinned) EXPECT_EQ(cudaFreeHost(pinned), cudaSuccess);
  return c;
}

int64_t get(const std::map<std::string, int64_t>& m, const char* name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

/// Nothing in a call waits for the device or creates anything.
void expect_asynchronous(const std::map<std::string, int64_t>& calls, const char* which) {
  for (const char* name : {"cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize", "cudaEventQuery",
                           "cudaMemcpy", "cudaMemset", "cudaMalloc", "cudaFree", "cudaHostAlloc", "cudaFreeHost",
                           "cudaStreamCreateWithFlags", "cudaEventCreateWithFlags", "cublasCreate"}) {
    EXPECT_EQ(get(calls, name), 0) << which << " called " << name;
  }
}

struct PerStep {
  const char* name;
  CellSpec cell;
  int64_t fwd_gemms, fwd_kernels, bwd_gemms, bwd_kernels;
};

TEST(CudaCallStructure, PerStepGemmsAndFusedKernels) {
  CellSpec proj = CellSpec::lstm(6);
  proj.num_proj = 4;
  proj.use_peepholes = true;
  proj.cell_clip = 1.0;
  const std::vector<PerStep> cells = {
      {"BasicRNNCell", CellSpec::basic_rnn(6), 1, 1, 1, 1},
      {"BasicLSTMCell", CellSpec::basic_lstm(6), 1, 1, 1, 1},
      {"LSTMCell with num_proj", proj, 2, 2, 2, 2},
      {"GRUCell", CellSpec::gru(6), 2, 2, 2, 2},
  };
  for (const PerStep& want : cells) {
    SCOPED_TRACE(want.name);
    RnnSpec spec;
    spec.cells_fw = {want.cell};
    spec.input_size = 5;
    spec.parallel_iterations = 64;  // one chunk: the per-chunk GEMMs do not grow with T
    const Counts short_run = count_calls<float>(spec, 6, false), long_run = count_calls<float>(spec, 10, false);
    expect_asynchronous(long_run.forward, "forward");
    expect_asynchronous(long_run.backward, "backward");
    const auto per_step = [](const Counts& a, const Counts& b, bool fwd, const char* name) {
      const int64_t d = get(fwd ? b.forward : b.backward, name) - get(fwd ? a.forward : a.backward, name);
      EXPECT_EQ(d % 4, 0) << name << " grows by " << d << " over 4 steps";
      return d / 4;
    };
    EXPECT_EQ(per_step(short_run, long_run, true, "cublasGemmEx"), want.fwd_gemms) << "forward GEMMs per step";
    EXPECT_EQ(per_step(short_run, long_run, true, "cudaLaunchKernel"), want.fwd_kernels) << "forward kernels per step";
    EXPECT_EQ(per_step(short_run, long_run, false, "cublasGemmEx"), want.bwd_gemms) << "backward GEMMs per step";
    EXPECT_EQ(per_step(short_run, long_run, false, "cudaLaunchKernel"), want.bwd_kernels)
        << "backward kernels per step";
    for (const char* copy : {"cudaMemcpyAsync", "cudaMemsetAsync"}) {
      EXPECT_EQ(per_step(short_run, long_run, true, copy), 0) << "forward " << copy << " per step";
      EXPECT_EQ(per_step(short_run, long_run, false, copy), 0) << "backward " << copy << " per step";
    }
  }
}

/// Every configuration of the fault-injection tests (stacks, bidirectional, swap_memory, recompute,
/// float64, bfloat16, float16, ragged lengths).
TEST(CudaCallStructure, NoSynchronizationOrAllocationInsideCalls) {
  for (const RnnSpec& spec : testing_support::configurations()) {
    SCOPED_TRACE(testing_support::describe(spec));
    dynrnn::dispatch_dtype(spec.dtype, [&](auto tag) {
      const Counts c = count_calls<typename decltype(tag)::type>(spec, 6, true);
      expect_asynchronous(c.forward, "forward");
      expect_asynchronous(c.backward, "backward");
      EXPECT_GT(get(c.forward, "cudaLaunchKernel"), 0);
    });
  }
}

}  // namespace
