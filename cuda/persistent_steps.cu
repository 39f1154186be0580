// cuda/persistent_steps.cu — the persistent forward kernel. One launch runs all steps of a chunk: the
// grid splits the cell's U units (output columns of its pointwise stage) among its blocks, each block
// copies the recurrent weight columns of its units (all G gates) into shared memory once, and then,
// step after step, computes those GEMM columns for every batch row and applies the cell stage to its
// units. A grid-wide barrier after each stage publishes what the next stage or step reads from every
// block (h, GRU's r*h, LSTM's projection input). The cell math is cell_math.h's, as in the
// per-step path; the GEMM accumulates in compute_t<T> in a fixed order, so results are deterministic
// and differ from cuBLAS's only by summation order.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <variant>

#include "cuda/cuda_check.h"
#include "cuda/dynamic_shared.cuh"
#include "cuda/launch_config.h"
#include "cuda/persistent_steps.h"
#include "host/element_types.h"

namespace dynrnn {
namespace cuda_detail {
namespace {

namespace cg = cooperative_groups;

/// The absent second stage of a one-stage cell.
struct NoStage {
  int64_t cols = 0;
};

/// One stage as the kernel sees it: RecurrentStage with its op's concrete type, and where this
/// stage's weight slice sits in each block's shared memory.
template <typename T, typename P>
struct Stage {
  const T* in = nullptr;
  int64_t in_step = 0;
  int64_t k = 0;
  const T* w = nullptr;
  int64_t gates = 1;
  T* out = nullptr;
  int64_t out_step = 0;
  P op;
  int64_t per_block = 0;    ///< units each block owns (the last blocks may own fewer, or none)
  int64_t smem_offset = 0;  ///< elements of T

  /// This block's units [first, first + count).
  __host__ __device__ int64_t first(unsigned block) const { return block * per_block; }
  __host__ __device__ int64_t count(unsigned block) const {
    const int64_t rest = op.cols - first(block);
    return rest < 0 ? 0 : (rest < per_block ? rest : per_block);
  }
  /// Shared-memory elements of one block's slice: [k][gate][unit], rows of gates * per_block.
  int64_t smem_elems() const { return k * gates * per_block; }
};

template <typename T, typename P1, typename P2>
struct Program {
  Stage<T, P1> s1;
  Stage<T, P2> s2;
  int64_t batch = 0;
  int64_t steps = 0;
};

template <typename P>
constexpr bool kPresent = !std::is_same<P, NoStage>::value;

/// Copies the block's weight columns g * U + u (its units u, every gate g) into shared memory.
template <typename T, typename P>
__device__ void load_weights(const Stage<T, P>& s, T* smem) {
  const int64_t u0 = s.first(blockIdx.x), n = s.count(blockIdx.x);
  const int64_t ld = s.gates * s.op.cols, row = s.gates * s.per_block, per_k = s.gates * n;
  T* dst = smem + s.smem_offset;
  for (int64_t i = threadIdx.x; i < s.k * per_k; i += blockDim.x) {
    const int64_t k = i / per_k, g = i % per_k / n, u = i % n;
    dst[k * row + g * s.per_block + u] = s.w[k * ld + g * s.op.cols + u0 + u];
  }
}

/// Step e of one stage for the block's units: their GEMM columns for every row, then the cell stage.
template <typename T, typename P>
__device__ void run_stage(const Stage<T, P>& s, int64_t e, int64_t batch, const T* smem) {
  using A = compute_t<T>;
  const int64_t u0 = s.first(blockIdx.x), n = s.count(blockIdx.x);
  if (n == 0) return;  // the same for every thread of the block
  const T* in = s.in + e * s.in_step;
  T* out = s.out + e * s.out_step;
  const T* w = smem + s.smem_offset;
  const int64_t ld = s.gates * s.op.cols, row = s.gates * s.per_block, width = s.gates * n;
  for (int64_t i = threadIdx.x; i < batch * width; i += blockDim.x) {
    const int64_t b = i / width, g = i % width / n, u = i % n;
    const T* x = in + b * s.k;
    const T* wc = w + g * s.per_block + u;
    A acc = A(0);
    for (int64_t k = 0; k < s.k; ++k) acc += A(x[k]) * A(wc[k * row]);
    out[b * ld + g * s.op.cols + u0 + u] = T(acc);
  }
  __syncthreads();  // the cell stage reads the columns other threads of this block wrote
  const P op = s.op.at_step(e);
  for (int64_t i = threadIdx.x; i < batch * n; i += blockDim.x) op.apply(i / n, u0 + i % n);
}

template <typename T, typename P1, typename P2>
__global__ void __launch_bounds__(kThreadsPerBlock) persistent_steps_kernel(const Program<T, P1, P2> p) {
  T* smem = reinterpret_cast<T*>(dynamic_shared_memory());
  load_weights(p.s1, smem);
  if constexpr (kPresent<P2>) load_weights(p.s2, smem);
  __syncthreads();
  cg::grid_group grid = cg::this_grid();
  for (int64_t e = 0; e < p.steps; ++e) {
    run_stage(p.s1, e, p.batch, smem);
    grid.sync();  // every block's stage results (h, r*h, m_raw) are read by every block next
    if constexpr (kPresent<P2>) {
      run_stage(p.s2, e, p.batch, smem);
      grid.sync();
    }
  }
}

template <typename T, typename P>
Stage<T, P> stage(const RecurrentStage<T>& r, const P& op) {
  Stage<T, P> s;
  s.in = r.in;
  s.in_step = r.in_step;
  s.k = r.k;
  s.w = r.w;
  s.gates = r.gates;
  s.out = r.out;
  s.out_step = r.out_step;
  s.op = op;
  return s;
}

/// Whether a stage's slice (k x gates x per_block elements; all three up to 2^40) fits in `capacity`.
template <typename T, typename P>
bool fits(const Stage<T, P>& s, int64_t capacity) {
  if (s.per_block == 0) return true;
  return s.k <= capacity / s.gates && s.k * s.gates <= capacity / s.per_block;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// Picks the most blocks (up to 4 per multiprocessor, at most one per unit) whose weight slices fit
/// in shared memory with every block resident at once, and launches; *ran = false if none fits.
template <typename T, typename P1, typename P2>
Status launch_program(Program<T, P1, P2> p, const PersistentLimits& limits, cudaStream_t stream, bool* ran) {
  *ran = false;
  auto kernel = persistent_steps_kernel<T, P1, P2>;
  const int64_t units = p.s1.op.cols > p.s2.op.cols ? p.s1.op.cols : p.s2.op.cols;
  const int64_t capacity = static_cast<int64_t>(limits.shared_bytes / sizeof(T));
  for (int per_sm = 4; per_sm >= 1; --per_sm) {
    const int64_t sms = limits.multiprocessors;
    const int64_t blocks = units < sms * per_sm ? units : sms * per_sm;
    p.s1.per_block = ceil_div(p.s1.op.cols, blocks);
    p.s2.per_block = kPresent<P2> ? ceil_div(p.s2.op.cols, blocks) : 0;
    // Widths reach 2^40 (model.cpp), so test each slice by division before multiplying.
    if (!fits(p.s1, capacity)) continue;
    p.s2.smem_offset = p.s1.smem_elems();
    if (!fits(p.s2, capacity - p.s2.smem_offset)) continue;
    const int64_t elems = p.s2.smem_offset + p.s2.smem_elems();
    const size_t bytes = static_cast<size_t>(elems) * sizeof(T);
    // Above 48 KiB a kernel must opt in; setting it is a host-side attribute, allowed during capture.
    DYNRNN_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    int resident = 0;
    DYNRNN_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, static_cast<int>(kThreadsPerBlock), bytes));
    if (resident < per_sm) continue;
    void* args[] = {&p};
    const cudaError_t e = cudaLaunchCooperativeKernel(kernel, dim3(static_cast<unsigned>(blocks)),
                                                      dim3(kThreadsPerBlock), args, bytes, stream);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return cuda_error(e, "cudaLaunchCooperativeKernel of persistent_steps_kernel", __FILE__, __LINE__);
    }
    DYNRNN_LAUNCH_CHECK(stream, "persistent_steps_kernel");
    *ran = true;
    return Status::ok();
  }
  return Status::ok();
}

}  // namespace

template <typename T>
Status persistent_steps(const RecurrentSteps<T>& r, const PersistentLimits& limits, cudaStream_t stream, bool* ran) {
  *ran = false;
  if (!limits.cooperative || limits.multiprocessors < 1 || r.batch < 1 || r.steps < 1) return Status::ok();
  const RecurrentStage<T>& a = r.stage[0];
  const RecurrentStage<T>& b = r.stage[1];
  // The cells' stage pairs (Orchestrator::recurrent_steps): one kernel instantiation each.
  auto run = [&](auto p) {
    p.batch = r.batch;
    p.steps = r.steps;
    return launch_program(p, limits, stream, ran);
  };
  if (const auto* rnn = std::get_if<cell::RnnForwardParams<T>>(&a.op)) {
    return run(Program<T, cell::RnnForwardParams<T>, NoStage>{stage(a, *rnn), {}});
  }
  if (const auto* gates = std::get_if<cell::GruGatesForwardParams<T>>(&a.op)) {
    const auto* cand = std::get_if<cell::GruCandidateForwardParams<T>>(&b.op);
    if (r.stages != 2 || !cand)
      return Status(StatusCode::kInternal, "persistent_steps: a GRU needs its candidate stage");
    return run(Program<T, cell::GruGatesForwardParams<T>, cell::GruCandidateForwardParams<T>>{stage(a, *gates),
                                                                                              stage(b, *cand)});
  }
  const auto* lstm = std::get_if<cell::LstmForwardParams<T>>(&a.op);
  if (!lstm) return Status(StatusCode::kInternal, "persistent_steps: unknown first stage");
  if (r.stages == 1) return run(Program<T, cell::LstmForwardParams<T>, NoStage>{stage(a, *lstm), {}});
  const auto* proj = std::get_if<cell::ProjForwardParams<T>>(&b.op);
  if (!proj) return Status(StatusCode::kInternal, "persistent_steps: an LSTM's second stage is its projection");
  return run(Program<T, cell::LstmForwardParams<T>, cell::ProjForwardParams<T>>{stage(a, *lstm), stage(b, *proj)});
}

#define DYNRNN_INSTANTIATE(T) \
  template Status persistent_steps<T>(const RecurrentSteps<T>&, const PersistentLimits&, cudaStream_t, bool*);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace cuda_detail
}  // namespace dynrnn
