#include <cstdio>
#include <memory>
#include <string>

#include "bench/overlap_probes.h"
#include "bench/probe_support.cuh"

namespace bench {
namespace {

struct OwnStream {
  cudaStream_t s = nullptr;
  explicit OwnStream(int priority) {
    BENCH_CUDA_CHECK(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority));
  }
  ~OwnStream() {
    if (s) (void)cudaStreamDestroy(s);
  }
  OwnStream(const OwnStream&) = delete;
  OwnStream& operator=(const OwnStream&) = delete;
};

struct OwnEvent {
  cudaEvent_t e = nullptr;
  OwnEvent() { BENCH_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming)); }
  ~OwnEvent() {
    if (e) (void)cudaEventDestroy(e);
  }
  OwnEvent(const OwnEvent&) = delete;
  OwnEvent& operator=(const OwnEvent&) = delete;
};

/// `to` waits for everything issued to `from` so far.
void join(cudaStream_t to, cudaStream_t from, OwnEvent& ev) {
  BENCH_CUDA_CHECK(cudaEventRecord(ev.e, from));
  BENCH_CUDA_CHECK(cudaStreamWaitEvent(to, ev.e, 0));
}

/// One LSTM layer's chunks of K steps over a batch of B: per chunk the input projection
/// G[c % 2] [4H x K B] = W [4H x H] X [H x K B], then per step gh [4H x B] = R [4H x H] h [H x B] and
/// one kernel standing in for the cell's (column-major, float32, exact FP32 GEMMs).
class LayerChunks {
 public:
  LayerChunks(const CalibrationSizes& s, cudaStream_t fill_stream)
      : H_(s.probe_h),
        B_(s.probe_b),
        K_(s.probe_k),
        chunks_(s.chain / s.probe_k > 2 ? s.chain / s.probe_k : 2),
        W_(bytes(4 * H_, H_)),
        X_(bytes(H_, K_ * B_)),
        G_(2 * bytes(4 * H_, K_ * B_)),
        R_(bytes(4 * H_, H_)),
        h_(bytes(H_, B_)),
        gh_(bytes(4 * H_, B_)) {
    fill(f(W_), int64_t(4) * H_ * H_, 11, fill_stream);
    fill(f(X_), int64_t(H_) * K_ * B_, 12, fill_stream);
    fill(f(R_), int64_t(4) * H_ * H_, 13, fill_stream);
    fill(f(h_), int64_t(H_) * B_, 14, fill_stream);
    BENCH_CUDA_CHECK(cudaStreamSynchronize(fill_stream));
  }

  int chunks() const { return chunks_; }
  std::string describe() const {
    return std::to_string(chunks_) + " chunks of K = " + std::to_string(K_) + " steps, H = " + std::to_string(H_) +
           ", B = " + std::to_string(B_);
  }

  void project(Blas& blas, int c) {
    sgemm(blas, 4 * H_, K_ * B_, H_, f(W_), f(X_), f(G_) + size_t(c % 2) * 4 * H_ * K_ * B_);
  }
  void steps(Blas& blas, cudaStream_t s) {
    for (int e = 0; e < K_; ++e) {
      sgemm(blas, 4 * H_, B_, H_, f(R_), f(h_), f(gh_));
      BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(empty_kernel, dim3(1), dim3(1), s));
    }
  }

 private:
  static size_t bytes(int rows, int cols) { return size_t(rows) * size_t(cols) * sizeof(float); }
  static float* f(DevBuf& b) { return static_cast<float*>(b.p); }
  static void sgemm(Blas& blas, int m, int n, int k, const float* a, const float* b, float* c) {
    const float one = 1.0f, zero = 0.0f;
    BENCH_CUBLAS_CHECK(cublasSgemm(blas.h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &one, a, m, b, k, &zero, c, m));
  }

  int H_, B_, K_, chunks_;
  DevBuf W_, X_, G_, R_, h_, gh_;
};

/// Milliseconds per chunk with the projection of chunk c + 1 on `side` while chunk c's steps run on
/// `main` (two projection buffers: a projection waits until the steps two chunks back are done).
double beside_ms(LayerChunks& w, cudaStream_t main, cudaStream_t side) {
  Blas on_main(main), on_side(side);
  OwnEvent fork, done, ready[2], free[2];
  const double ms = median_ms(main, 1, 5, [&](int) {
    join(side, main, fork);
    for (int c = 0; c < w.chunks(); ++c) {
      if (c >= 2) BENCH_CUDA_CHECK(cudaStreamWaitEvent(side, free[c % 2].e, 0));
      w.project(on_side, c);
      join(main, side, ready[c % 2]);
      w.steps(on_main, main);
      BENCH_CUDA_CHECK(cudaEventRecord(free[c % 2].e, main));
    }
    join(main, side, done);
  });
  return ms / w.chunks();
}

}  // namespace

void overlap_probes(cudaStream_t stream, const CalibrationSizes& sizes, const CalibrationItem& item) {
  // 1. The input projection beside the steps.
  {
    std::unique_ptr<LayerChunks> work;
    double serial = 0, apart_proj = 0, apart_steps = 0;
    serial = item("overlap_projection_serial", "ms/chunk", [&](std::string* note) {
      work = std::make_unique<LayerChunks>(sizes, stream);
      Blas blas(stream);
      const int n = work->chunks();
      apart_proj = median_ms(stream, 1, 5,
                             [&](int) {
                               for (int c = 0; c < n; ++c) work->project(blas, c);
                             }) /
                   n;
      apart_steps = median_ms(stream, 1, 5,
                              [&](int) {
                                for (int c = 0; c < n; ++c) work->steps(blas, stream);
                              }) /
                    n;
      const double ms = median_ms(stream, 1, 5, [&](int) {
        for (int c = 0; c < n; ++c) {
          work->project(blas, c);
          work->steps(blas, stream);
        }
      });
      *note = work->describe() + "; projection then steps on one stream (dynrnn now); apart: projection " +
              std::to_string(apart_proj) + " + steps " + std::to_string(apart_steps) + " ms/chunk";
      return ms / n;
    });
    if (!work) return;
    auto versus = [&](double ms) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "; serial / this = %.2f (ideal max(apart) gives %.2f)", serial / ms,
                    serial / (apart_proj > apart_steps ? apart_proj : apart_steps));
      return std::string(buf);
    };
    item("overlap_projection_beside", "ms/chunk", [&](std::string* note) {
      OwnStream side(0);
      const double ms = beside_ms(*work, stream, side.s);
      *note = "next chunk's projection on a second stream, default priorities" + versus(ms);
      return ms;
    });
    item("overlap_projection_beside_priority", "ms/chunk", [&](std::string* note) {
      int least = 0, greatest = 0;
      BENCH_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
      OwnStream steps(greatest), side(least);
      const double ms = beside_ms(*work, steps.s, side.s);
      *note = "as beside, the steps' stream at the highest priority (" + std::to_string(greatest) +
              "), the projection's at the lowest (" + std::to_string(least) + ")" + versus(ms);
      return ms;
    });
  }

  // 2. Two cooperative kernels on half the multiprocessors each.
  // Half the multiprocessors, at least one block: set by the first item, which the second needs.
  dim3 grid(1);
  const dim3 block(128);
  double alone = 0;
  alone = item("grid_sync_half_sms", "us/sync", [&](std::string* note) {
    int dev = 0, sms = 0, coop = 0, per_sm = 0;
    BENCH_CUDA_CHECK(cudaGetDevice(&dev));
    BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
    BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    BENCH_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, grid_sync_kernel, 128, 0));
    // Two grids that can both be resident whatever multiprocessors they land on: no probe can hang.
    if (!coop || per_sm < 2) throw BenchError("no cooperative launch, or fewer than 2 resident blocks per SM");
    grid.x = static_cast<unsigned>(sms / 2 > 0 ? sms / 2 : 1);
    *note = std::to_string(grid.x) + " blocks of 128 threads, " + std::to_string(sizes.chain) +
            " grid.sync(), one grid alone";
    DevBuf sink(sizeof(int));
    int iters = sizes.chain;
    int* sink_p = static_cast<int*>(sink.p);
    void* args[] = {&iters, &sink_p};
    return median_ms(stream, 1, 5,
                     [&](int) {
                       BENCH_CUDA_CHECK(cudaLaunchCooperativeKernel(grid_sync_kernel, grid, block, args, 0, stream));
                     }) *
           1e3 / sizes.chain;
  });
  if (!(alone > 0)) return;
  item("grid_sync_two_half_grids", "us/sync", [&](std::string* note) {
    OwnStream side(0);
    OwnEvent fork, done;
    DevBuf sinks(2 * sizeof(int));
    int iters = sizes.chain;
    int* sink_a = static_cast<int*>(sinks.p);
    int* sink_b = sink_a + 1;
    void* args_a[] = {&iters, &sink_a};
    void* args_b[] = {&iters, &sink_b};
    const double us =
        median_ms(stream, 1, 5,
                  [&](int) {
                    join(side.s, stream, fork);
                    BENCH_CUDA_CHECK(cudaLaunchCooperativeKernel(grid_sync_kernel, grid, block, args_a, 0, stream));
                    BENCH_CUDA_CHECK(cudaLaunchCooperativeKernel(grid_sync_kernel, grid, block, args_b, 0, side.s));
                    join(stream, side.s, done);
                  }) *
        1e3 / sizes.chain;
    char buf[128];
    std::snprintf(buf, sizeof buf, "the same two grids on two streams; this / alone = %.2f (1: at once, 2: in turn)",
                  us / alone);
    *note = buf;
    return us;
  });
}

}  // namespace bench
