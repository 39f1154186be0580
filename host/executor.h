// host/executor.h — the few verbs the orchestrator needs; the CPU and CUDA executors implement them.
#pragma once

#include <cstdint>
#include <type_traits>
#include <variant>

#include "dynrnn/cell_math.h"
#include "dynrnn/dropout_math.h"
#include "dynrnn/rnn.h"
#include "dynrnn/status.h"
#include "host/running_rows.h"
#include "host/status_macros.h"

namespace dynrnn {

/// One pointwise stage of a time step, a gather of a chunk of inputs, a recompute stage, a move of
/// states between element types or batch orders, a ResidualWrapper's sum (cell_math.h), or a
/// DropoutWrapper's masks (dropout_math.h).
template <typename T>
using PointwiseOp =
    std::variant<cell::RnnForwardParams<T>, cell::RnnBackwardParams<T>, cell::LstmForwardParams<T>,
                 cell::LstmBackwardParams<T>, cell::ProjForwardParams<T>, cell::ProjBackwardParams<T>,
                 cell::GruGatesForwardParams<T>, cell::GruCandidateForwardParams<T>,
                 cell::GruCandidateBackwardParams<T>, cell::GruGatesBackwardParams<T>,
                 cell::GruResetAfterForwardParams<T>, cell::GruResetAfterBackwardParams<T>, cell::SeqCopyParams<T>,
                 cell::PreactivationParams<T>, cell::GruResetParams<T>, cell::GruResetAfterRegenParams<T>,
                 cell::LstmOutputParams<T>, cell::WidenParams<T>, cell::NarrowParams<T>, cell::SumParams<T>,
                 cell::PermuteRowsParams<T>, cell::ResidualSeqParams<T>, dropout::DropoutParams<T>>;

/// A row-major matrix operand: element (r, c) at data[r * ld + c] (or [c * ld + r] when transposed).
template <typename T>
struct MatRef {
  const T* data;
  int64_t ld;
  bool trans;
};

/// The pointwise stages that follow a recurrent GEMM in forward (cell_math.h; each has at_step).
template <typename T>
using StageOp = std::variant<cell::RnnForwardParams<T>, cell::LstmForwardParams<T>, cell::ProjForwardParams<T>,
                             cell::GruGatesForwardParams<T>, cell::GruCandidateForwardParams<T>,
                             cell::GruResetAfterForwardParams<T>>;

/// One stage of a recurrent step e of a chunk: out_e[B, G*U] = in_e[B, K] * w[K, G*U] (rounded to T
/// once), then the pointwise stage `op` at step e, whose column u reads out_e columns g*U + u (g < G).
/// in_e = in + e * in_step and out_e = out + e * out_step (0: the same scratch every step).
template <typename T>
struct RecurrentStage {
  const T* in = nullptr;
  int64_t in_step = 0;
  int64_t k = 0;
  const T* w = nullptr;  ///< row-major [K, G*U], ld G*U
  int64_t gates = 1;     ///< G
  T* out = nullptr;
  int64_t out_step = 0;
  StageOp<T> op;  ///< at the chunk's first step (op.batch = B, op.cols = U)

  int64_t units() const {
    return std::visit([](const auto& p) { return p.cols; }, op);
  }
  /// The pointwise stage of step e.
  PointwiseOp<T> op_at(int64_t e) const {
    return std::visit([e](const auto& p) { return PointwiseOp<T>(p.at_step(e)); }, op);
  }
};

/// The steps of a chunk's recurrent program, and the rows each step's GEMMs cover.
struct ChunkSteps {
  int64_t batch = 0;
  int64_t steps = 0;
  int64_t first_step = 0;  ///< the call's step that the chunk's step 0 is
  /// The rows still running at each step of the call, or null (all B rows): step e's GEMMs need
  /// only those, since every later row has ended. Its GEMM rows are never read in forward
  /// (cell_math.h's running_row_value) and would add or store exact zeros in backward.
  const RunningRows* running = nullptr;

  int64_t gemm_rows(int64_t e) const { return running ? running->at(first_step + e) : batch; }
};

/// The recurrent part of `steps` consecutive forward steps of one layer: per step, its stages in
/// order, each reading what the previous stage and the previous step wrote. Stage 1 is the cell's
/// recurrent GEMM and fused kernel; GRU (the candidate on r*h) and LSTM with num_proj (the
/// projection) have a stage 2.
template <typename T>
struct RecurrentSteps : ChunkSteps {
  explicit RecurrentSteps(const ChunkSteps& chunk) : ChunkSteps(chunk) {}
  RecurrentStage<T> stage[2];
  int stages = 1;
};

/// The pointwise stages of a backward step, each followed by a GEMM with a transposed weight.
template <typename T>
using BackwardStageOp = std::variant<cell::RnnBackwardParams<T>, cell::LstmBackwardParams<T>,
                                     cell::ProjBackwardParams<T>, cell::GruCandidateBackwardParams<T>,
                                     cell::GruGatesBackwardParams<T>, cell::GruResetAfterBackwardParams<T>>;

/// One stage of backward step e: the pointwise stage `op` at step e, which writes the gradient
/// in_e[B, M] (in + e * in_step), then out[B, N] = in_e * w^T with w row-major [N, M]; out null:
/// the step's dh_prev (compute_t<T>) += in_e * w^T instead. Column n of out feeds the next
/// stage's column n (the same unit), or the step before's.
template <typename T>
struct RecurrentBackwardStage {
  BackwardStageOp<T> op;  ///< at the chunk's first step (op.batch = B)
  const T* in = nullptr;
  int64_t in_step = 0;
  int64_t m = 0;
  const T* w = nullptr;
  int64_t n = 0;
  T* out = nullptr;

  /// The pointwise stage of step e, with that step's state-gradient buffers.
  PointwiseOp<T> op_at(int64_t e, const compute_t<T>* dh_next, compute_t<T>* dh_prev) const {
    return std::visit([&](const auto& p) { return PointwiseOp<T>(p.at_step(e, dh_next, dh_prev)); }, op);
  }
};

/// The recurrent part of `steps` consecutive backward steps of one layer, run from the chunk's last
/// step (e = steps - 1) down to its first. The running gradient of h ping-pongs between dh[0] and
/// dh[1]: the i-th step run reads dh[(first + i) % 2] and writes the other.
template <typename T>
struct RecurrentBackwardSteps : ChunkSteps {
  explicit RecurrentBackwardSteps(const ChunkSteps& chunk) : ChunkSteps(chunk) {}
  RecurrentBackwardStage<T> stage[2];
  int stages = 1;
  compute_t<T>* dh[2] = {nullptr, nullptr};
  int first = 0;
};

/// Executors run verbs in the order they are called on one logical queue (the CUDA executor maps it to
/// the caller's stream). Every verb validates nothing: the orchestrator passes planned, valid views.
template <typename T>
class Executor {
 public:
  virtual ~Executor() = default;

  /// Brackets one forward or backward call on the caller's stream. `queues` and `events` are how many
  /// queue and event ids the call will use (ids 0..queues-1 and 0..events-1). Queue 0 is the caller's
  /// stream; the CUDA executor maps the others to internal streams that first wait for the caller's
  /// stream, and end() makes the caller's stream wait for all of them. The CPU executor runs
  /// everything in call order and ignores the stream.
  virtual Status begin(Stream stream, int queues, int events) = 0;
  /// Creates what calls using up to `queues` queues and `events` events need (the CUDA executor's
  /// streams, events and cuBLAS workspaces), so that no call has to; called once, at handle creation.
  virtual Status prepare(int /*queues*/, int /*events*/) { return Status::ok(); }
  virtual Status end() = 0;

  /// The queue that subsequent verbs are issued to (0 after begin).
  virtual Status set_queue(int queue) = 0;
  /// Marks how far the current queue has been issued, under `event` (re-recording replaces the mark
  /// for later waits; waits already issued keep the mark they saw).
  virtual Status record(int event) = 0;
  /// Work issued to the current queue after this waits for the latest record of `event`.
  virtual Status wait(int event) = 0;

  /// C[m x n] = alpha * op(A)[m x k] * op(B)[k x n] + beta * C, row-major with row strides. k may be 0.
  /// Products accumulate in compute_t<T> and C is rounded to T once.
  virtual Status gemm(int64_t m, int64_t n, int64_t k, compute_t<T> alpha, MatRef<T> a, MatRef<T> b, compute_t<T> beta,
                      T* c, int64_t ldc) = 0;
  /// gemm with C in compute_t<T>: the float32 weight-gradient accumulators of the 16-bit types (for
  /// float and double, the same as gemm).
  virtual Status gemm_wide(int64_t m, int64_t n, int64_t k, compute_t<T> alpha, MatRef<T> a, MatRef<T> b,
                           compute_t<T> beta, compute_t<T>* c, int64_t ldc) = 0;
  /// Runs op.apply(b, j) for every b < op.batch, j < op.cols.
  virtual Status pointwise(const PointwiseOp<T>& op) = 0;
  /// Runs the steps one stage at a time: a gemm and a pointwise verb per stage and step. The CUDA
  /// executor may instead run them all in one persistent kernel (RnnSpec::algorithm).
  virtual Status recurrent_steps(const RecurrentSteps<T>& r) {
    using A = compute_t<T>;
    for (int64_t e = 0; e < r.steps; ++e) {
      for (int i = 0; i < r.stages; ++i) {
        const RecurrentStage<T>& s = r.stage[i];
        const int64_t n = s.gates * s.units();
        DYNRNN_TRY(gemm(r.gemm_rows(e), n, s.k, A(1), {s.in + e * s.in_step, s.k, false}, {s.w, n, false}, A(0),
                        s.out + e * s.out_step, n));
        DYNRNN_TRY(pointwise(s.op_at(e)));
      }
    }
    return Status::ok();
  }
  /// Runs the backward steps one stage at a time: a pointwise and a gemm verb per stage and step.
  /// The CUDA executor may instead run them all in one persistent kernel (RnnSpec::algorithm).
  virtual Status recurrent_backward_steps(const RecurrentBackwardSteps<T>& r) {
    using A = compute_t<T>;
    for (int64_t i = 0; i < r.steps; ++i) {
      const int64_t e = r.steps - 1 - i;
      A* next = r.dh[(r.first + i) % 2];
      A* prev = r.dh[(r.first + i + 1) % 2];
      for (int k = 0; k < r.stages; ++k) {
        const RecurrentBackwardStage<T>& s = r.stage[k];
        DYNRNN_TRY(pointwise(s.op_at(e, next, prev)));
        const MatRef<T> in{s.in + e * s.in_step, s.m, false}, w{s.w, s.m, true};
        if (s.out) {
          DYNRNN_TRY(gemm_to(r.gemm_rows(e), s.n, s.m, in, w, A(0), s.out, s.n));
        } else {
          DYNRNN_TRY(gemm_to(r.gemm_rows(e), s.n, s.m, in, w, A(1), prev, s.n));
        }
      }
    }
    return Status::ok();
  }
  /// gemm (alpha 1) or column_sum into a T or a compute_t<T> buffer: gemm_wide and column_sum_wide
  /// for the 16-bit types' float32 accumulators.
  template <typename G>
  Status gemm_to(int64_t m, int64_t n, int64_t k, MatRef<T> a, MatRef<T> b, compute_t<T> beta, G* c, int64_t ldc) {
    if constexpr (std::is_same<G, T>::value) {
      return gemm(m, n, k, compute_t<T>(1), a, b, beta, c, ldc);
    } else {
      return gemm_wide(m, n, k, compute_t<T>(1), a, b, beta, c, ldc);
    }
  }
  template <typename G>
  Status sum_to(int64_t rows, int64_t cols, MatRef<T> src, bool accumulate, G* dst) {
    if constexpr (std::is_same<G, T>::value) {
      return column_sum(rows, cols, src.data, src.ld, accumulate, dst);
    } else {
      return column_sum_wide(rows, cols, src.data, src.ld, accumulate, dst);
    }
  }
  /// The order in which the batch runs sorted by length (length_order.h): rows[k] = the batch row at
  /// position k, sorted_len[k] = lengths[rows[k]], all [batch] int32 in backend memory.
  virtual Status order_by_length(const int32_t* lengths, int64_t batch, int64_t max_time, int32_t* rows,
                                 int32_t* sorted_len) = 0;
  /// dst[r * ld + c] = 0 for r < rows, c < cols.
  virtual Status fill_zero(T* dst, int64_t rows, int64_t cols, int64_t ld) = 0;
  /// dst[i] = src[i] for i < count (non-overlapping).
  virtual Status copy(T* dst, const T* src, int64_t count) = 0;
  /// dst[c] = sum_r src[r * ld + c] + (accumulate ? dst[c] : 0) for c < cols, summed in a fixed
  /// order in compute_t<T>.
  virtual Status column_sum(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate, T* dst) = 0;
  /// column_sum into compute_t<T> (the 16-bit types' float32 bias-gradient accumulators).
  virtual Status column_sum_wide(int64_t rows, int64_t cols, const T* src, int64_t ld, bool accumulate,
                                 compute_t<T>* dst) = 0;
  /// Whether the executor's host copies can use `p` (swap_memory's host_reserve) without synchronizing
  /// the host: the CUDA executor requires pinned memory (cudaHostAlloc / cudaHostRegister), since a
  /// copy to or from pageable memory waits for the device and is staged by the driver. Called before
  /// begin(); `name` names the argument in the error.
  virtual Status check_host_buffer(const char* /*name*/, const void* /*p*/) { return Status::ok(); }
  /// Copies count elements between backend memory and pinned host memory, asynchronously on the
  /// current queue (swap_memory).
  virtual Status copy_to_host(T* host_dst, const T* src, int64_t count) = 0;
  virtual Status copy_to_device(T* dst, const T* host_src, int64_t count) = 0;
};

}  // namespace dynrnn
