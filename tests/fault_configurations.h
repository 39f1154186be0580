// The configurations and the call that the fault-injection tests share: the executor-verb and
// host-allocation faults on the CPU (fault_injection_test.cpp) and every CUDA/cuBLAS call failing on
// the emulated device (cuda_emulation/cuda_fault_injection_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dtype_support.h"
#include "dynrnn/rnn.h"

namespace testing_support {

/// The buffers of one training forward + backward, with every output poisoned with NaN first.
template <typename T>
struct Call : CallBuffers<T> {
  using Base = CallBuffers<T>;
  dynrnn::ForwardArgs f;
  dynrnn::BackwardArgs b;

  explicit Call(dynrnn::Rnn& rnn) : Base(rnn, /*T=*/6, /*B=*/3, rnn.spec().time_major) {
    EXPECT_TRUE(this->ok()) << this->error;
    this->set_sine_problem(rnn);
    poison();
    f = this->forward_args();
    b = this->backward_args();
  }
  /// Every result NaN, workspace and reserve bytes 0xFF (the buffers stay where f and b point).
  void poison() {
    this->fill_results(T(NAN));
    fill_bytes(this->ws, 0xFF);
    fill_bytes(this->rs, 0xFF);
  }
};

inline std::vector<dynrnn::RnnSpec> configurations() {
  std::vector<dynrnn::RnnSpec> specs;
  dynrnn::RnnSpec a;  // LSTM with projection and peepholes (and clips)
  dynrnn::CellSpec lstm = dynrnn::CellSpec::lstm(4);
  lstm.use_peepholes = true;
  lstm.num_proj = 3;
  lstm.cell_clip = 2.0;
  lstm.proj_clip = 1.5;
  a.cells_fw = {lstm};
  a.input_size = 3;
  a.parallel_iterations = 2;
  specs.push_back(a);
  dynrnn::RnnSpec g;  // a GRU stack, time-major, float64
  g.cells_fw = {dynrnn::CellSpec::gru(3), dynrnn::CellSpec::gru(2), dynrnn::CellSpec::basic_rnn(2)};
  g.input_size = 3;
  g.time_major = true;
  g.dtype = dynrnn::DataType::kFloat64;
  g.parallel_iterations = 4;
  specs.push_back(g);
  dynrnn::RnnSpec bi;  // bidirectional stacks of mixed cells
  bi.cells_fw = {dynrnn::CellSpec::basic_lstm(3), dynrnn::CellSpec::gru(2)};
  bi.cells_bw = {dynrnn::CellSpec::gru(2), lstm, dynrnn::CellSpec::gru_reset_after(2)};
  bi.input_size = 3;
  bi.parallel_iterations = 3;
  specs.push_back(bi);
  dynrnn::RnnSpec swap = a;  // swap_memory: host buffer allocation and host copies in the schedule
  swap.cells_fw = {dynrnn::CellSpec::lstm(3), dynrnn::CellSpec::gru(3)};
  swap.swap_memory = true;
  swap.parallel_iterations = 1;
  specs.push_back(swap);
  dynrnn::RnnSpec rec = bi;  // recompute
  rec.recompute = true;
  specs.push_back(rec);
  // 16-bit storage: the float32 running sums (cell state, dh/dc, weight-gradient accumulators) add
  // verbs of their own (widen, narrow, gemm_wide, column_sum_wide).
  dynrnn::RnnSpec bf16 = bi;
  bf16.dtype = dynrnn::DataType::kBFloat16;
  specs.push_back(bf16);
  dynrnn::RnnSpec fp16 = swap;
  fp16.dtype = dynrnn::DataType::kFloat16;
  fp16.recompute = true;
  specs.push_back(fp16);
  // The persistent forward kernel (kCuda; the CPU runs kStandard): one cooperative launch per chunk
  // with its shared-memory opt-in and occupancy queries, for every cell's stage pair.
  dynrnn::RnnSpec persistent = bi;
  persistent.algorithm = dynrnn::RecurrentAlgorithm::kPersistent;
  persistent.cells_fw.push_back(dynrnn::CellSpec::basic_rnn(2));
  specs.push_back(persistent);
  // stack_bidirectional: a call of several blocks (a fault in a later one, after earlier blocks ran),
  // with swap_memory's host reserve split between them, and the input projections pipelined on their
  // own queues.
  dynrnn::RnnSpec stacked = bi;
  stacked.cells_fw.push_back(dynrnn::CellSpec::basic_rnn(2));
  stacked.stack_bidirectional = true;
  stacked.swap_memory = true;
  stacked.parallel_iterations = 2;
  stacked.pipeline_projections = true;
  specs.push_back(stacked);
  return specs;
}

inline std::string describe(const dynrnn::RnnSpec& s) {
  return std::to_string(s.cells_fw.size()) + " fw + " + std::to_string(s.cells_bw.size()) + " bw cells, " +
         dtype_name(s.dtype) + (s.swap_memory ? ", swap_memory" : "") + (s.recompute ? ", recompute" : "") +
         (s.algorithm == dynrnn::RecurrentAlgorithm::kPersistent ? ", persistent" : "") +
         (s.stack_bidirectional ? ", stack_bidirectional" : "") + (s.pipeline_projections ? ", pipelined" : "");
}

}  // namespace testing_support
