// cuda/persistent_steps.cu — the persistent kernels (RnnSpec::algorithm = kPersistent). One launch
// runs all steps of a layer's chunk. The grid splits every unit space of the layer (H, or O for a
// projection) evenly among its blocks, the same way for spaces of the same size, so a block owns the
// same units in every stage. Each block copies the recurrent-weight columns of its units into shared
// memory once per launch; then, step after step, it computes those GEMM columns for every batch row
// and applies the cell_math.h stage to its units, exactly the stages of the per-step path.
//  * forward stage: GEMM (its units' columns of every gate) -> __syncthreads -> cell stage -> grid.sync
//  * backward stage: cell stage -> grid.sync -> GEMM with the transposed weight (its units' columns)
//    -> __syncthreads
// A grid-wide barrier stands wherever a block reads what other blocks wrote (h, GRU's r*h, LSTM's
// projection input; dz and its kind); everything else a block reads it wrote itself. The GEMMs
// accumulate in compute_t<T> in a fixed order: results are deterministic and differ from cuBLAS's
// only by summation order.
#include <cooperative_groups.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
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

/// The block's share [first, first + count) of a space of `size` units split `per_block` a block.
struct Share {
  int64_t first, count;
};
__host__ __device__ inline Share share(int64_t size, int64_t per_block, unsigned block) {
  const int64_t first = block * per_block, rest = size - first;
  return {first, rest < 0 ? 0 : (rest < per_block ? rest : per_block)};
}

// The block GEMM's register tile and K split. A thread sums a 4 x 4 tile of outputs, so each weight
// and input it loads feeds four products (one load per two FMAs, against two loads per FMA for an
// output per thread). When the tiles are fewer than the threads, K is split into up to 16 slices
// whose partial tiles meet in shared memory, in slice order.
constexpr int kTileRows = 4, kTileCols = 4, kMaxSlices = 16;

__host__ __device__ inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// K slices of a batch x width block GEMM (tiles x slices never exceeds the block's threads).
__host__ __device__ inline int64_t gemm_slices(int64_t batch, int64_t width) {
  const int64_t tiles = ceil_div(batch, kTileRows) * ceil_div(width, kTileCols);
  if (tiles >= static_cast<int64_t>(kThreadsPerBlock)) return 1;
  const int64_t s = static_cast<int64_t>(kThreadsPerBlock) / tiles;
  return s < kMaxSlices ? s : kMaxSlices;
}

/// Shared memory for the partial tiles, ahead of the weights (a multiple of 16 bytes).
template <typename T>
constexpr size_t kScratchBytes = size_t(kThreadsPerBlock) * kTileRows* kTileCols * sizeof(compute_t<T>);

/// out(b, c) for every row b and the block's `width` columns c: the sum over k of in[b * k_len + k]
/// times the shared-memory weight w[k * row + scol(c)], in compute_t<T>, k ascending within a slice
/// and slices in order. Rows past their sequence's length (map.valid(b) false) store 0, and a tile
/// whose rows have all ended skips its sum: the cell stages discard those rows, and their gradients
/// are exactly 0, so a ragged batch costs little more than its running rows. Callers place a block
/// barrier between this and the next use of `scratch` or of what it stored.
template <typename T, typename Col, typename Store>
__device__ void block_gemm(const T* in, int64_t k_len, int64_t batch, const T* w, int64_t row, int64_t width, Col scol,
                           const cell::StepMap& map, compute_t<T>* scratch, Store store) {
  using A = compute_t<T>;
  constexpr int R = kTileRows, C = kTileCols;
  const int64_t col_tiles = ceil_div(width, C), tiles = ceil_div(batch, R) * col_tiles;
  const int64_t slices = gemm_slices(batch, width), k_step = ceil_div(k_len, slices);
  const auto put = [&](int64_t b, int64_t c, A v) {
    if (b < batch && c < width) store(b, c, map.valid(b) ? v : A(0));
  };
  for (int64_t job = threadIdx.x; job < tiles * slices; job += blockDim.x) {
    const int64_t tile = job % tiles, slice = job / tiles;
    const int64_t b0 = tile / col_tiles * R, c0 = tile % col_tiles * C;
    A acc[R][C];
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) acc[r][c] = A(0);
    }
    bool live = false;
    for (int r = 0; r < R; ++r) live = live || (b0 + r < batch && map.valid(b0 + r));
    if (live) {
      // Rows and columns past the edge repeat the last one (their sums are never stored).
      const T* x[R];
      int64_t wc[C];
      for (int r = 0; r < R; ++r) x[r] = in + (b0 + r < batch ? b0 + r : batch - 1) * k_len;
      for (int c = 0; c < C; ++c) wc[c] = scol(c0 + c < width ? c0 + c : width - 1);
      const int64_t k1 = (slice + 1) * k_step < k_len ? (slice + 1) * k_step : k_len;
      for (int64_t k = slice * k_step; k < k1; ++k) {
        A xv[R];
        for (int r = 0; r < R; ++r) xv[r] = A(x[r][k]);
        const T* wk = w + k * row;
        for (int c = 0; c < C; ++c) {
          const A wv = A(wk[wc[c]]);
          for (int r = 0; r < R; ++r) acc[r][c] += xv[r] * wv;
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) {
        if (slices == 1) {
          put(b0 + r, c0 + c, acc[r][c]);
        } else {
          scratch[(slice * tiles + tile) * R * C + r * C + c] = acc[r][c];
        }
      }
    }
  }
  if (slices == 1) return;  // the same for every thread of the block
  __syncthreads();
  for (int64_t tile = threadIdx.x; tile < tiles; tile += blockDim.x) {
    const int64_t b0 = tile / col_tiles * R, c0 = tile % col_tiles * C;
    for (int i = 0; i < R * C; ++i) {
      A sum = scratch[tile * R * C + i];
      for (int64_t slice = 1; slice < slices; ++slice) sum += scratch[(slice * tiles + tile) * R * C + i];
      put(b0 + i / C, c0 + i % C, sum);
    }
  }
}

/// The absent second stage of a one-stage cell.
struct NoStage {
  int64_t cols = 0;
};

template <typename P>
constexpr bool kPresent = !std::is_same<P, NoStage>::value;

// ---- forward ----------------------------------------------------------------------------------

/// RecurrentStage with its cell stage's concrete type and its place in shared memory.
template <typename T, typename P>
struct Stage {
  const T* in = nullptr;
  int64_t in_step = 0;
  int64_t k = 0;
  const T* w = nullptr;  ///< [K, G*U]
  int64_t gates = 1;
  T* out = nullptr;
  int64_t out_step = 0;
  P op;
  int64_t per_block = 0;    ///< units of op.cols per block
  int64_t smem_offset = 0;  ///< elements of T
  /// A block's slice: [k][gate][unit], rows of gates * per_block.
  int64_t smem_elems() const { return k * gates * per_block; }
  int64_t space() const { return op.cols; }
};

template <typename T, typename P1, typename P2>
struct Program {
  Stage<T, P1> s1;
  Stage<T, P2> s2;
  int64_t batch = 0;
  int64_t steps = 0;
};

/// Copies the block's weight columns g * U + u (its units u, every gate g) into shared memory.
template <typename T, typename P>
__device__ void load_weights(const Stage<T, P>& s, T* smem) {
  const Share my = share(s.op.cols, s.per_block, blockIdx.x);
  const int64_t ld = s.gates * s.op.cols, row = s.gates * s.per_block, per_k = s.gates * my.count;
  T* dst = smem + s.smem_offset;
  for (int64_t i = threadIdx.x; i < s.k * per_k; i += blockDim.x) {
    const int64_t k = i / per_k, g = i % per_k / my.count, u = i % my.count;
    dst[k * row + g * s.per_block + u] = s.w[k * ld + g * s.op.cols + my.first + u];
  }
}

/// Forward step e of one stage for the block's units: their GEMM columns, then the cell stage.
template <typename T, typename P>
__device__ void run_stage(const Stage<T, P>& s, int64_t e, int64_t batch, const T* smem, compute_t<T>* scratch) {
  using A = compute_t<T>;
  const Share my = share(s.op.cols, s.per_block, blockIdx.x);
  if (my.count == 0) return;  // the same for every thread of the block
  T* out = s.out + e * s.out_step;
  const int64_t U = s.op.cols, n = my.count;
  const P op = s.op.at_step(e);
  block_gemm(
      s.in + e * s.in_step, s.k, batch, smem + s.smem_offset, s.gates * s.per_block, s.gates * n,
      [&](int64_t c) { return c / n * s.per_block + c % n; }, op.map, scratch,
      [&](int64_t b, int64_t c, A acc) { out[b * s.gates * U + c / n * U + my.first + c % n] = T(acc); });
  __syncthreads();  // the cell stage reads the columns other threads of this block wrote
  for (int64_t i = threadIdx.x; i < batch * n; i += blockDim.x) op.apply(i / n, my.first + i % n);
}

template <typename T, typename P1, typename P2>
__global__ void __launch_bounds__(kThreadsPerBlock) persistent_forward_kernel(const Program<T, P1, P2> p) {
  unsigned char* shared = dynamic_shared_memory();
  compute_t<T>* scratch = reinterpret_cast<compute_t<T>*>(shared);
  T* smem = reinterpret_cast<T*>(shared + kScratchBytes<T>);
  load_weights(p.s1, smem);
  if constexpr (kPresent<P2>) load_weights(p.s2, smem);
  __syncthreads();
  cg::grid_group grid = cg::this_grid();
  for (int64_t e = 0; e < p.steps; ++e) {
    run_stage(p.s1, e, p.batch, smem, scratch);
    grid.sync();  // every block's stage results (h, r*h, m_raw) are read by every block next
    if constexpr (kPresent<P2>) {
      run_stage(p.s2, e, p.batch, smem, scratch);
      grid.sync();
    }
  }
}

// ---- backward ---------------------------------------------------------------------------------

/// RecurrentBackwardStage with its cell stage's concrete type, whether its GEMM adds to the step's
/// running dh (in compute_t<T>) or sets `out` (drh, dm_raw), and its place in shared memory.
template <typename T, typename P, bool Adds>
struct BackStage {
  static constexpr bool kAdds = Adds;
  P op;
  const T* in = nullptr;
  int64_t in_step = 0;
  int64_t m = 0;
  const T* w = nullptr;  ///< [N, M]
  int64_t n = 0;
  T* out = nullptr;         ///< !Adds
  int64_t per_block = 0;    ///< per block: units of op.cols, and output columns of n (spaces of one size
  int64_t per_block_n = 0;  ///< split alike)
  int64_t smem_offset = 0;
  /// A block's slice: w^T's columns of its outputs, [m][per_block_n].
  int64_t smem_elems() const { return m * per_block_n; }
};

struct NoBackStage {
  NoStage op;
  int64_t n = 0, m = 0, per_block = 0, per_block_n = 0, smem_offset = 0;
  int64_t smem_elems() const { return 0; }
};

template <typename T, typename S1, typename S2>
struct BackProgram {
  S1 s1;
  S2 s2;
  int64_t batch = 0;
  int64_t steps = 0;
  compute_t<T>* dh[2] = {nullptr, nullptr};
  int first = 0;
};

/// Copies w's rows of the block's output columns, transposed, into shared memory.
template <typename T, typename S>
__device__ void load_rows(const S& s, T* smem) {
  const Share my = share(s.n, s.per_block_n, blockIdx.x);
  T* dst = smem + s.smem_offset;
  for (int64_t i = threadIdx.x; i < s.m * my.count; i += blockDim.x) {
    const int64_t k = i / my.count, c = i % my.count;
    dst[k * s.per_block_n + c] = s.w[(my.first + c) * s.m + k];
  }
}

/// Backward step e of one stage: the cell stage on the block's units, then (after every block's)
/// the block's output columns of in_e * w^T.
template <typename T, typename S>
__device__ void run_back_stage(const S& s, int64_t e, int64_t batch, const compute_t<T>* next, compute_t<T>* prev,
                               const T* smem, compute_t<T>* scratch, cg::grid_group& grid) {
  using A = compute_t<T>;
  const Share units = share(s.op.cols, s.per_block, blockIdx.x);
  const auto op = s.op.at_step(e, next, prev);
  for (int64_t i = threadIdx.x; i < batch * units.count; i += blockDim.x) {
    op.apply(i / units.count, units.first + i % units.count);
  }
  grid.sync();  // the GEMM reads every block's gradient columns
  const Share my = share(s.n, s.per_block_n, blockIdx.x);
  if (my.count > 0) {
    const int64_t n = s.n;
    block_gemm(
        s.in + e * s.in_step, s.m, batch, smem + s.smem_offset, s.per_block_n, my.count, [](int64_t c) { return c; },
        op.map, scratch,
        [&](int64_t b, int64_t c, A acc) {
          if constexpr (S::kAdds) {
            // A finished row's dz is 0: its state gradient passes through untouched (not even -0 + 0).
            if (op.map.valid(b)) prev[b * n + my.first + c] += acc;
          } else {
            s.out[b * n + my.first + c] = T(acc);
          }
        });
  }
  __syncthreads();  // the next cell stage reads the columns other threads of this block wrote
}

template <typename T, typename S1, typename S2>
__global__ void __launch_bounds__(kThreadsPerBlock) persistent_backward_kernel(const BackProgram<T, S1, S2> p) {
  unsigned char* shared = dynamic_shared_memory();
  compute_t<T>* scratch = reinterpret_cast<compute_t<T>*>(shared);
  T* smem = reinterpret_cast<T*>(shared + kScratchBytes<T>);
  load_rows<T>(p.s1, smem);
  if constexpr (kPresent<decltype(p.s2.op)>) load_rows<T>(p.s2, smem);
  // No barrier here: the weights are first read after the first cell stage's grid.sync().
  cg::grid_group grid = cg::this_grid();
  for (int64_t i = 0; i < p.steps; ++i) {
    const compute_t<T>* next = p.dh[(p.first + i) % 2];
    compute_t<T>* prev = p.dh[(p.first + i + 1) % 2];
    const int64_t e = p.steps - 1 - i;
    run_back_stage<T>(p.s1, e, p.batch, next, prev, smem, scratch, grid);
    if constexpr (kPresent<decltype(p.s2.op)>) run_back_stage<T>(p.s2, e, p.batch, next, prev, smem, scratch, grid);
  }
}

// ---- launch -----------------------------------------------------------------------------------

/// Whether rows x cols elements (each up to 2^40 and more than 0) fit in `capacity`.
bool fits(int64_t rows, int64_t cols, int64_t capacity) {
  return cols == 0 || (rows <= capacity && cols <= capacity / rows);
}

/// Tries the most blocks first (up to 4 per multiprocessor, at most one per unit of the largest
/// space): `plan(blocks)` splits the program and returns the weight elements a block holds in shared
/// memory (after the GEMM scratch), or -1 when a slice does not fit; the first split whose blocks can all be resident
/// is launched. Nothing fits: *ran = false and nothing is enqueued.
template <typename T, typename Args, typename Plan>
Status launch(void (*kernel)(Args), Args& p, int64_t units, PersistentDevice& device, Plan plan, cudaStream_t stream,
              const char* what, bool* ran) {
  *ran = false;
  if (device.shared_bytes < kScratchBytes<T>) return Status::ok();
  const int64_t capacity = static_cast<int64_t>((device.shared_bytes - kScratchBytes<T>) / sizeof(T));
  for (int per_sm = 4; per_sm >= 1; --per_sm) {
    const int64_t most = static_cast<int64_t>(device.multiprocessors) * per_sm;
    const int64_t blocks = units < most ? units : most;
    const int64_t elems = plan(blocks, capacity);
    if (elems < 0) continue;
    const size_t bytes = kScratchBytes<T> + static_cast<size_t>(elems) * sizeof(T);
    const void* id = reinterpret_cast<const void*>(kernel);
    if (!device.opted_in.count(id)) {
      // Above 48 KiB a kernel must opt in, once, to the most any launch of it may use (a host-side
      // attribute of the function, which capture allows).
      DYNRNN_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(device.shared_bytes)));
      device.opted_in.insert(id);
    }
    auto known = device.resident.find(std::make_pair(id, bytes));
    if (known == device.resident.end()) {
      int resident = 0;
      DYNRNN_CUDA_CHECK(
          cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, static_cast<int>(kThreadsPerBlock), bytes));
      known = device.resident.emplace(std::make_pair(id, bytes), resident).first;
    }
    if (known->second < per_sm) continue;
    void* args[] = {&p};
    const cudaError_t e = cudaLaunchCooperativeKernel(kernel, dim3(static_cast<unsigned>(blocks)),
                                                      dim3(kThreadsPerBlock), args, bytes, stream);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      return cuda_error(e, (std::string("cudaLaunchCooperativeKernel of ") + what).c_str(), __FILE__, __LINE__);
    }
    DYNRNN_LAUNCH_CHECK(stream, what);
    *ran = true;
    return Status::ok();
  }
  return Status::ok();
}

template <typename T, typename P1, typename P2>
Status launch_forward(Program<T, P1, P2> p, PersistentDevice& device, cudaStream_t stream, bool* ran) {
  const int64_t units = p.s1.space() > p.s2.space() ? p.s1.space() : p.s2.space();
  const auto plan = [&p](int64_t blocks, int64_t capacity) -> int64_t {
    p.s1.per_block = ceil_div(p.s1.space(), blocks);
    p.s2.per_block = kPresent<P2> ? ceil_div(p.s2.space(), blocks) : 0;
    if (!fits(p.s1.k, p.s1.gates * p.s1.per_block, capacity)) return -1;
    p.s2.smem_offset = p.s1.smem_elems();
    if (!fits(p.s2.k, p.s2.gates * p.s2.per_block, capacity - p.s2.smem_offset)) return -1;
    return p.s2.smem_offset + p.s2.smem_elems();
  };
  return launch<T>(persistent_forward_kernel<T, P1, P2>, p, units, device, plan, stream, "persistent_forward_kernel",
                   ran);
}

template <typename T, typename S1, typename S2>
Status launch_backward(BackProgram<T, S1, S2> p, PersistentDevice& device, cudaStream_t stream, bool* ran) {
  const int64_t sizes[] = {p.s1.op.cols, p.s1.n, p.s2.op.cols, p.s2.n};
  int64_t units = 0;
  for (int64_t u : sizes) units = u > units ? u : units;
  const auto plan = [&p](int64_t blocks, int64_t capacity) -> int64_t {
    int64_t offset = 0;
    const auto split = [&](auto& s) {
      s.per_block = s.op.cols ? ceil_div(s.op.cols, blocks) : 0;
      s.per_block_n = s.n ? ceil_div(s.n, blocks) : 0;
      s.smem_offset = offset;
      if (!fits(s.m, s.per_block_n, capacity - offset)) return false;
      offset += s.smem_elems();
      return true;
    };
    return split(p.s1) && split(p.s2) ? offset : -1;
  };
  return launch<T>(persistent_backward_kernel<T, S1, S2>, p, units, device, plan, stream, "persistent_backward_kernel",
                   ran);
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

/// A backward stage whose GEMM adds to the running dh (r.out null) or sets r.out.
template <typename T, bool Adds, typename P>
BackStage<T, P, Adds> back_stage(const RecurrentBackwardStage<T>& r, const P& op) {
  BackStage<T, P, Adds> s;
  s.op = op;
  s.in = r.in;
  s.in_step = r.in_step;
  s.m = r.m;
  s.w = r.w;
  s.n = r.n;
  s.out = r.out;
  return s;
}

}  // namespace

template <typename T>
Status persistent_steps(const RecurrentSteps<T>& r, PersistentDevice& device, cudaStream_t stream, bool* ran) {
  *ran = false;
  if (!device.cooperative || device.multiprocessors < 1 || r.batch < 1 || r.steps < 1) return Status::ok();
  const RecurrentStage<T>& a = r.stage[0];
  const RecurrentStage<T>& b = r.stage[1];
  // The cells' stage pairs (Orchestrator::recurrent_steps): one kernel instantiation each.
  auto run = [&](auto p) {
    p.batch = r.batch;
    p.steps = r.steps;
    return launch_forward(p, device, stream, ran);
  };
  if (const auto* rnn = std::get_if<cell::RnnForwardParams<T>>(&a.op)) {
    return run(Program<T, cell::RnnForwardParams<T>, NoStage>{stage(a, *rnn), {}});
  }
  if (const auto* gru = std::get_if<cell::GruResetAfterForwardParams<T>>(&a.op)) {
    return run(Program<T, cell::GruResetAfterForwardParams<T>, NoStage>{stage(a, *gru), {}});
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

template <typename T>
Status persistent_backward_steps(const RecurrentBackwardSteps<T>& r, PersistentDevice& device, cudaStream_t stream,
                                 bool* ran) {
  *ran = false;
  if (!device.cooperative || device.multiprocessors < 1 || r.batch < 1 || r.steps < 1) return Status::ok();
  const RecurrentBackwardStage<T>& a = r.stage[0];
  const RecurrentBackwardStage<T>& b = r.stage[1];
  // The cells' stage pairs (Orchestrator::recurrent_backward_steps): one kernel instantiation each.
  auto run = [&](auto p) {
    p.batch = r.batch;
    p.steps = r.steps;
    p.dh[0] = r.dh[0];
    p.dh[1] = r.dh[1];
    p.first = r.first;
    return launch_backward(p, device, stream, ran);
  };
  using RnnB = cell::RnnBackwardParams<T>;
  using LstmB = cell::LstmBackwardParams<T>;
  using ProjB = cell::ProjBackwardParams<T>;
  using CandB = cell::GruCandidateBackwardParams<T>;
  using GatesB = cell::GruGatesBackwardParams<T>;
  using ResetAfterB = cell::GruResetAfterBackwardParams<T>;
  if (r.stages == 1) {
    if (const auto* rnn = std::get_if<RnnB>(&a.op)) {
      return run(BackProgram<T, BackStage<T, RnnB, true>, NoBackStage>{back_stage<T, true>(a, *rnn), {}});
    }
    if (const auto* lstm = std::get_if<LstmB>(&a.op)) {
      return run(BackProgram<T, BackStage<T, LstmB, true>, NoBackStage>{back_stage<T, true>(a, *lstm), {}});
    }
    if (const auto* gru = std::get_if<ResetAfterB>(&a.op)) {
      return run(BackProgram<T, BackStage<T, ResetAfterB, true>, NoBackStage>{back_stage<T, true>(a, *gru), {}});
    }
    return Status(StatusCode::kInternal, "persistent_backward_steps: unknown one-stage cell");
  }
  if (const auto* cand = std::get_if<CandB>(&a.op)) {
    const auto* gates = std::get_if<GatesB>(&b.op);
    if (!gates) return Status(StatusCode::kInternal, "persistent_backward_steps: a GRU's second stage is its gates");
    return run(BackProgram<T, BackStage<T, CandB, false>, BackStage<T, GatesB, true>>{back_stage<T, false>(a, *cand),
                                                                                      back_stage<T, true>(b, *gates)});
  }
  const auto* proj = std::get_if<ProjB>(&a.op);
  const auto* lstm = std::get_if<LstmB>(&b.op);
  if (!proj || !lstm) return Status(StatusCode::kInternal, "persistent_backward_steps: unknown two-stage cell");
  return run(BackProgram<T, BackStage<T, ProjB, false>, BackStage<T, LstmB, true>>{back_stage<T, false>(a, *proj),
                                                                                   back_stage<T, true>(b, *lstm)});
}

#define DYNRNN_INSTANTIATE(T)                                                                                     \
  template Status persistent_steps<T>(const RecurrentSteps<T>&, PersistentDevice&, cudaStream_t, bool*);          \
  template Status persistent_backward_steps<T>(const RecurrentBackwardSteps<T>&, PersistentDevice&, cudaStream_t, \
                                               bool*);
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_INSTANTIATE)
#undef DYNRNN_INSTANTIATE

}  // namespace cuda_detail
}  // namespace dynrnn
