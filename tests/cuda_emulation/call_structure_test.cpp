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

#include "device_call.h"
#include "fault_configurations.h"
#include "faulty_executor.h"
#include "hooks.h"
#include "host/element_types.h"

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using testing_support::CallBuffers;
using testing_support::DeviceCall;

struct Counts {
  std::map<std::string, int64_t> forward, backward;
};

/// Mirrors a CallBuffers onto the device and counts the calls of a training forward and a backward,
/// twice: the handle's first calls (Rnn::create made everything they need) and a second pair.
template <typename E>
std::vector<Counts> count_calls(const RnnSpec& spec, int64_t T, bool with_lengths) {
  std::unique_ptr<Rnn> rnn;
  EXPECT_TRUE(Rnn::create(spec, Backend::kCuda, &rnn).is_ok());
  CallBuffers<E> h(*rnn, T, /*B=*/3, spec.time_major);
  h.set_sine_problem(*rnn);
  if (!with_lengths) h.len.clear();  // every row runs T steps
  DeviceCall<E> d(h);
  const dynrnn::ForwardArgs f = d.f;
  const dynrnn::BackwardArgs b = d.b;
  std::vector<Counts> c(2);
  for (Counts& calls : c) {
    cuda_emulation::reset_call_counts();
    EXPECT_TRUE(rnn->forward(f).is_ok());
    calls.forward = cuda_emulation::call_counts();
    cuda_emulation::reset_call_counts();
    EXPECT_TRUE(rnn->backward(b).is_ok());
    calls.backward = cuda_emulation::call_counts();
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return c;
}

int64_t get(const std::map<std::string, int64_t>& m, const char* name) {
  auto it = m.find(name);
  return it == m.end() ? 0 : it->second;
}

/// Nothing in a call waits for the device or creates anything.
void expect_asynchronous(const std::map<std::string, int64_t>& calls, const char* which) {
  for (const char* name :
       {"cudaDeviceSynchronize", "cudaStreamSynchronize", "cudaEventSynchronize", "cudaEventQuery", "cudaMemcpy",
        "cudaMemset", "cudaMalloc", "cudaFree", "cudaHostAlloc", "cudaFreeHost", "cudaStreamCreateWithFlags",
        "cudaEventCreateWithFlags", "cublasCreate", "cudaMemcpyAsync with pageable host memory"}) {
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
      {"GRUCell(reset_after=True)", CellSpec::gru_reset_after(6), 1, 1, 1, 1},
  };
  for (const PerStep& want : cells) {
    SCOPED_TRACE(want.name);
    RnnSpec spec;
    spec.cells_fw = {want.cell};
    spec.input_size = 5;
    spec.parallel_iterations = 64;  // one chunk: the per-chunk GEMMs do not grow with T
    const Counts short_run = count_calls<float>(spec, 6, false)[1], long_run = count_calls<float>(spec, 10, false)[1];
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

/// A one-step batch-major input [B, 1, D] is already in step order: the first layer reads x and writes
/// its gradient in place, as for time-major input, with no gather or scatter kernel (step-at-a-time
/// callers run one call per step).
TEST(CudaCallStructure, OneStepBatchMajorCallsReadInputsInPlace) {
  for (const CellSpec& cell : {CellSpec::lstm(6), CellSpec::gru(5)}) {
    RnnSpec spec;
    spec.cells_fw = {cell, CellSpec::basic_rnn(4)};
    spec.input_size = 5;
    spec.time_major = true;
    const Counts time_major = count_calls<float>(spec, 1, false)[1];
    spec.time_major = false;
    const Counts batch_major = count_calls<float>(spec, 1, false)[1];
    const Counts two_steps = count_calls<float>(spec, 2, false)[1];
    EXPECT_EQ(get(batch_major.forward, "cudaLaunchKernel"), get(time_major.forward, "cudaLaunchKernel"));
    EXPECT_EQ(get(batch_major.backward, "cudaLaunchKernel"), get(time_major.backward, "cudaLaunchKernel"));
    // Not vacuous: with two steps, batch-major input is gathered (forward, and backward for dW_x) and its
    // gradient scattered.
    spec.time_major = true;
    const Counts two_steps_tm = count_calls<float>(spec, 2, false)[1];
    EXPECT_EQ(get(two_steps.forward, "cudaLaunchKernel"), get(two_steps_tm.forward, "cudaLaunchKernel") + 1);
    EXPECT_EQ(get(two_steps.backward, "cudaLaunchKernel"), get(two_steps_tm.backward, "cudaLaunchKernel") + 2);
  }
}

/// kPersistent: a forward or backward chunk's steps are one cooperative kernel per layer, in place of
/// every recurrent GEMM and per-step kernel; a layer whose recurrent weights do not fit in the
/// (emulated H100's) shared memory runs the per-step path.
TEST(CudaCallStructure, PersistentStepsAreOneCooperativeKernelPerChunk) {
  CellSpec proj = CellSpec::lstm(6);
  proj.num_proj = 4;
  proj.use_peepholes = true;
  for (const CellSpec& cell :
       {CellSpec::basic_rnn(6), CellSpec::basic_lstm(6), proj, CellSpec::gru(6), CellSpec::gru_reset_after(6)}) {
    RnnSpec spec;
    spec.cells_fw = {cell, CellSpec::basic_lstm(5)};
    spec.input_size = 5;
    spec.parallel_iterations = 4;
    const Counts standard = count_calls<float>(spec, 10, false)[1];
    spec.algorithm = dynrnn::RecurrentAlgorithm::kPersistent;
    const std::vector<Counts> runs = count_calls<float>(spec, 10, false);
    SCOPED_TRACE(testing_support::describe(spec) + ", first cell kind " + std::to_string(static_cast<int>(cell.kind)));
    const int64_t stages = cell.kind == dynrnn::CellKind::kGRU || cell.num_proj > 0 ? 2 : 1;
    for (const Counts& c : runs) {
      for (const auto* calls : {&c.forward, &c.backward}) {
        const auto& want = calls == &c.forward ? standard.forward : standard.backward;
        expect_asynchronous(*calls, calls == &c.forward ? "forward" : "backward");
        // 2 layers x 3 chunks of 4, 4 and 2 steps; 10 steps x (stages + 1) GEMMs and kernels fewer.
        EXPECT_EQ(get(*calls, "cudaLaunchCooperativeKernel"), 6);
        EXPECT_EQ(get(*calls, "cublasGemmEx"), get(want, "cublasGemmEx") - 10 * (stages + 1));
        EXPECT_EQ(get(*calls, "cudaLaunchKernel"), get(want, "cudaLaunchKernel") - 10 * (stages + 1));
        // The shared-memory opt-in and the occupancy queries are made once per handle and size.
        if (&c == &runs[1]) {
          EXPECT_EQ(get(*calls, "cudaFuncSetAttribute"), 0);
          EXPECT_EQ(get(*calls, "cudaOccupancyMaxActiveBlocksPerMultiprocessor"), 0);
        }
      }
    }
  }
  RnnSpec big;  // float64 LSTM(400): 1.6 MiB of recurrent weights, more than 8 blocks can hold
  big.cells_fw = {CellSpec::basic_lstm(400)};
  big.input_size = 2;
  big.dtype = dynrnn::DataType::kFloat64;
  big.parallel_iterations = 64;
  const Counts standard = count_calls<double>(big, 3, false)[1];
  big.algorithm = dynrnn::RecurrentAlgorithm::kPersistent;
  const Counts fallback = count_calls<double>(big, 3, false)[1];
  for (const char* name : {"cudaLaunchCooperativeKernel", "cublasGemmEx", "cudaLaunchKernel"}) {
    EXPECT_EQ(get(fallback.forward, name), get(standard.forward, name)) << name;
    EXPECT_EQ(get(fallback.backward, name), get(standard.backward, name)) << name;
  }
}

/// Every configuration of the fault-injection tests (stacks, bidirectional, swap_memory, recompute,
/// float64, bfloat16, float16, ragged lengths), the handle's first calls included.
TEST(CudaCallStructure, NoSynchronizationOrAllocationInsideCalls) {
  for (const RnnSpec& spec : testing_support::configurations()) {
    SCOPED_TRACE(testing_support::describe(spec));
    dynrnn::dispatch_dtype(spec.dtype, [&](auto tag) {
      for (const Counts& c : count_calls<typename decltype(tag)::type>(spec, 6, true)) {
        expect_asynchronous(c.forward, "forward");
        expect_asynchronous(c.backward, "backward");
        EXPECT_GT(get(c.forward, "cudaLaunchKernel"), 0);
      }
    });
  }
}

/// With host_sequence_length, the batch runs sorted by length (the device computes the order from
/// the device lengths) and a step's recurrent GEMMs cover its running rows (the CPU path's
/// LengthAware tests check the rows for every cell, and that no row's result changes); without it,
/// kCuda cannot know the lengths on the host, and every step's GEMMs cover the whole batch.
TEST(CudaCallStructure, RecurrentGemmRowsFollowHostLengths) {
  RnnSpec spec;
  spec.cells_fw = {CellSpec::basic_lstm(4)};
  spec.input_size = 3;
  std::unique_ptr<Rnn> rnn;
  ASSERT_TRUE(Rnn::create(spec, Backend::kCuda, &rnn).is_ok());
  CallBuffers<float> h(*rnn, /*T=*/6, /*B=*/3, /*time_major=*/false);
  h.set_sine_problem(*rnn);
  h.len = {6, 2, 4};
  DeviceCall<float> d(h);
  const float* recurrent = static_cast<const float*>(d.f.weights) + rnn->params()[0].offset + 3 * 16;
  for (const bool host_lengths : {true, false}) {
    SCOPED_TRACE(host_lengths ? "host_sequence_length" : "device lengths only");
    dynrnn::ForwardArgs f = d.f;
    dynrnn::BackwardArgs b = d.b;
    f.host_sequence_length = b.host_sequence_length = host_lengths ? h.len.data() : nullptr;
    testing_support::Injection<float> spy(*rnn, 0);
    ASSERT_TRUE(rnn->forward(f).is_ok());
    ASSERT_TRUE(rnn->backward(b).is_ok());
    std::vector<int64_t> rows;
    for (const testing_support::GemmCall& g : spy.faulty().gemms()) {
      if (g.b == recurrent) rows.push_back(g.m);
    }
    const std::vector<int64_t> want =
        host_lengths ? std::vector<int64_t>{3, 3, 2, 2, 1, 1, 1, 1, 2, 2, 3, 3} : std::vector<int64_t>(12, 3);
    EXPECT_EQ(rows, want);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
