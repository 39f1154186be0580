// bench/calibrate.cu — the calibration micro-benchmarks of performance.md §3.4:
//  1. ceilings: large FP32 / TF32 / bf16 / fp16 / FP64 GEMMs (cublasGemmEx) and a large D2D copy;
//  2. tau candidates: 1000 dependent empty kernels eager vs one CUDA graph, 1000 dependent tiny
//     cuBLAS GEMMs [4H x B x H] (H = 256, 1024; B = 64) eager vs graph, a cooperative kernel doing
//     1000 grid.sync() on all SMs;
//     and bench/overlap_probes.h: a chunk's input projection beside its steps, two persistent grids;
//  3. cuDNN's per-call fixed cost (T = 1), when cuDNN is available;
//  4. pinned host <-> device bandwidth.
// Every CUDA / cuBLAS call is checked; a failed item is reported and skipped.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/calibrate.h"
#include "bench/overlap_probes.h"
#include "bench/probe_support.cuh"

namespace bench {
namespace {

struct Graph {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  ~Graph() {
    if (exec) (void)cudaGraphExecDestroy(exec);
    if (graph) (void)cudaGraphDestroy(graph);
  }
};

/// Captures fn() on `s` into a graph, returns the instantiate time (ms) through `inst_ms`.
void capture(cudaStream_t s, Graph& g, const std::function<void()>& fn, double* inst_ms) {
  BENCH_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    fn();
  } catch (...) {
    cudaGraph_t dead = nullptr;
    (void)cudaStreamEndCapture(s, &dead);
    if (dead) (void)cudaGraphDestroy(dead);
    (void)cudaGetLastError();
    throw;
  }
  BENCH_CUDA_CHECK(cudaStreamEndCapture(s, &g.graph));
  const auto t0 = std::chrono::steady_clock::now();
  const cudaError_t e = cudaGraphInstantiate(&g.exec, g.graph, 0);
  const auto t1 = std::chrono::steady_clock::now();
  BENCH_CUDA_CHECK(e);
  if (inst_ms) *inst_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
}

}  // namespace

Ceilings calibrate(cudaStream_t stream, const Ceilings& defaults, Report& report,
                   const std::function<double()>& cudnn_t1_us, const CalibrationSizes& sizes) {
  Ceilings c = defaults;
  int dev = 0;
  cudaDeviceProp prop{};
  BENCH_CUDA_CHECK(cudaGetDevice(&dev));
  BENCH_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
  c.l2_bytes = prop.l2CacheSize;
  std::printf("# calibration on %s (performance.md 3.4)\n", prop.name);
  auto item = [&](const std::string& name, const std::string& unit, const std::function<double(std::string*)>& fn) {
    std::string note;
    double v = kNaN;
    try {
      v = fn(&note);
    } catch (const BenchError& e) {
      note = std::string("failed: ") + e.what();
    }
    report.add_calibration(name, v, unit, note);
    return v;
  };
  bool measured_any = false;

  // 1. GEMM ceilings.
  {
    const int n = sizes.gemm_n;
    const double flops = 2.0 * n * n * static_cast<double>(n);
    auto gemm_rate = [&](cudaDataType_t ab, cudaDataType_t cty, cublasComputeType_t compute, size_t elem,
                         std::string* note) -> double {
      Blas blas(stream);
      DevBuf A(size_t(n) * n * elem), B(size_t(n) * n * elem), C(size_t(n) * n * 8);
      const int64_t count = int64_t(n) * n;
      fill_operand(ab, A.p, count, 1, stream);
      fill_operand(ab, B.p, count, 2, stream);
      const float alpha_f = 1.0f, beta_f = 0.0f;
      const double alpha_d = 1.0, beta_d = 0.0;
      const void* alpha = ab == CUDA_R_64F ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha_f);
      const void* beta = ab == CUDA_R_64F ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);
      const double ms = median_ms(stream, 2, 10, [&](int) {
        BENCH_CUBLAS_CHECK(cublasGemmEx(blas.h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, alpha, A.p, ab, n, B.p, ab, n, beta,
                                        C.p, cty, n, compute, CUBLAS_GEMM_DEFAULT));
      });
      *note = "cublasGemmEx " + std::to_string(n) + "^3, median of 10";
      return flops / (ms * 1e-3);
    };
    const double fp32 = item("gemm_fp32 (FP32 SIMT)", "TFLOP/s", [&](std::string* note) {
      return gemm_rate(CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F, 4, note) / 1e12;
    });
    const double tf32 = item("gemm_tf32 (tensor cores)", "TFLOP/s", [&](std::string* note) {
      return gemm_rate(CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32, 4, note) / 1e12;
    });
    const double bf16 = item("gemm_bf16 (fp32 accumulate)", "TFLOP/s", [&](std::string* note) {
      return gemm_rate(CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F, 2, note) / 1e12;
    });
    const double fp16 = item("gemm_fp16 (fp32 accumulate)", "TFLOP/s", [&](std::string* note) {
      return gemm_rate(CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F, 2, note) / 1e12;
    });
    const double fp64 = item("gemm_fp64", "TFLOP/s", [&](std::string* note) {
      return gemm_rate(CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F, 8, note) / 1e12;
    });
    if (std::isfinite(fp32)) c.flops_fp32 = fp32 * 1e12, measured_any = true;
    if (std::isfinite(tf32)) c.flops_tf32 = tf32 * 1e12, measured_any = true;
    if (std::isfinite(bf16)) c.flops_bf16 = bf16 * 1e12, measured_any = true;
    if (std::isfinite(fp16)) c.flops_fp16 = fp16 * 1e12, measured_any = true;
    if (std::isfinite(fp64)) c.flops_fp64 = fp64 * 1e12, measured_any = true;
  }

  // D2D copy bandwidth (bytes read + written).
  const double copy_tbs = item("d2d_copy (read + write)", "TB/s", [&](std::string* note) {
    const size_t bytes = sizes.copy_bytes;
    DevBuf a(bytes), b(bytes);
    BENCH_CUDA_CHECK(cudaMemsetAsync(a.p, 1, bytes, stream));
    const double ms = median_ms(stream, 2, 10, [&](int) {
      BENCH_CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice, stream));
    });
    *note = "cudaMemcpyAsync " + std::to_string(bytes >> 20) + " MiB, median of 10";
    return 2.0 * bytes / (ms * 1e-3) / 1e12;
  });
  if (std::isfinite(copy_tbs)) c.bw_hbm = copy_tbs * 1e12, measured_any = true;

  // 2a/2b. Dependent empty kernels, eager vs graph.
  const int chain = sizes.chain;
  item("empty_kernel_eager", "us/kernel", [&](std::string* note) {
    const double ms = median_ms(stream, 1, 5, [&](int) {
      for (int i = 0; i < chain; ++i) {
        BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(empty_kernel, dim3(1), dim3(1), stream));
      }
    });
    *note = std::to_string(chain) + " back-to-back launches in one stream";
    return ms * 1e3 / chain;
  });
  double graph_node_us = kNaN;
  graph_node_us = item("empty_kernel_graph", "us/kernel", [&](std::string* note) {
    Graph g;
    double inst = 0;
    capture(
        stream, g,
        [&] {
          for (int i = 0; i < chain; ++i) {
            BENCH_CUDA_CHECK(dynrnn::cuda_detail::launch_kernel(empty_kernel, dim3(1), dim3(1), stream));
          }
        },
        &inst);
    const double ms = median_ms(stream, 1, 5, [&](int) { BENCH_CUDA_CHECK(cudaGraphLaunch(g.exec, stream)); });
    *note = std::to_string(chain) + " nodes in one graph; instantiate " + std::to_string(inst) + " ms";
    return ms * 1e3 / chain;
  });

  // 2c. Tiny dependent cuBLAS GEMMs C[4H x B] = W[4H x H] h[H x B], eager vs graph.
  for (int H : sizes.chain_h) {
    const int B = sizes.chain_b;
    auto run_chain = [&](Blas& blas, DevBuf& W, DevBuf& h, DevBuf& C) {
      const float alpha = 1.0f, beta = 0.0f;
      for (int i = 0; i < chain; ++i) {
        BENCH_CUBLAS_CHECK(cublasSgemm(blas.h, CUBLAS_OP_N, CUBLAS_OP_N, 4 * H, B, H, &alpha,
                                       static_cast<const float*>(W.p), 4 * H, static_cast<const float*>(h.p), H, &beta,
                                       static_cast<float*>(C.p), 4 * H));
      }
    };
    const std::string tag = "sgemm_4Hx" + std::to_string(B) + "xH_H" + std::to_string(H);
    item(tag + "_eager", "us/gemm", [&](std::string* note) {
      Blas blas(stream);
      DevBuf W(size_t(4) * H * H * 4), h(size_t(H) * B * 4), C(size_t(4) * H * B * 4);
      fill(static_cast<float*>(W.p), int64_t(4) * H * H, 3, stream);
      fill(static_cast<float*>(h.p), int64_t(H) * B, 4, stream);
      const double ms = median_ms(stream, 1, 5, [&](int) { run_chain(blas, W, h, C); });
      *note = std::to_string(chain) + " SGEMMs in one stream";
      return ms * 1e3 / chain;
    });
    item(tag + "_graph", "us/gemm", [&](std::string* note) {
      Blas blas(stream);
      DevBuf W(size_t(4) * H * H * 4), h(size_t(H) * B * 4), C(size_t(4) * H * B * 4);
      fill(static_cast<float*>(W.p), int64_t(4) * H * H, 3, stream);
      fill(static_cast<float*>(h.p), int64_t(H) * B, 4, stream);
      BENCH_CUDA_CHECK(cudaStreamSynchronize(stream));
      Graph g;
      double inst = 0;
      capture(
          stream, g, [&] { run_chain(blas, W, h, C); }, &inst);
      const double ms = median_ms(stream, 1, 5, [&](int) { BENCH_CUDA_CHECK(cudaGraphLaunch(g.exec, stream)); });
      *note = std::to_string(chain) + " SGEMMs in one graph; instantiate " + std::to_string(inst) + " ms";
      return ms * 1e3 / chain;
    });
  }

  // 2d. grid.sync() on all SMs: the per-step floor of a persistent kernel.
  const double sync_us = item("grid_sync_all_sms", "us/sync", [&](std::string* note) {
    int coop = 0;
    BENCH_CUDA_CHECK(cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, dev));
    if (!coop) throw BenchError("device has no cooperative launch");
    int per_sm = 0;
    BENCH_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, grid_sync_kernel, 128, 0));
    if (per_sm < 1) throw BenchError("grid_sync_kernel cannot be resident");
    DevBuf sink(sizeof(int));
    int iters = chain;
    int* sink_p = static_cast<int*>(sink.p);
    void* args[] = {&iters, &sink_p};
    const dim3 grid(static_cast<unsigned>(prop.multiProcessorCount)), block(128);
    const double ms = median_ms(stream, 1, 5, [&](int) {
      BENCH_CUDA_CHECK(cudaLaunchCooperativeKernel(grid_sync_kernel, grid, block, args, 0, stream));
    });
    *note = "cooperative kernel, one 128-thread block per SM, " + std::to_string(chain) + " grid.sync()";
    return ms * 1e3 / chain;
  });
  if (std::isfinite(sync_us) && sync_us > 0) {
    c.tau_s = sync_us * 1e-6;
    measured_any = true;
  } else if (std::isfinite(graph_node_us) && graph_node_us > 0) {
    c.tau_s = graph_node_us * 1e-6;
    measured_any = true;
  }

  // 2e. What runs beside what: a chunk's input projection beside its steps, two persistent grids.
  overlap_probes(stream, sizes, item);

  // 3. cuDNN per-call fixed cost.
  if (cudnn_t1_us) {
    item("cudnn_lstm_T1_B1_H64_inference", "us/call", [&](std::string* note) {
      *note = "cudnnRNNForward STANDARD, median of 200";
      return cudnn_t1_us();
    });
  } else {
    report.add_calibration("cudnn_lstm_T1_B1_H64_inference", kNaN, "us/call", "skipped: built without cuDNN");
  }

  // 4. Pinned host <-> device bandwidth.
  for (bool h2d : {true, false}) {
    item(h2d ? "pinned_h2d" : "pinned_d2h", "GB/s", [&](std::string* note) {
      const size_t bytes = sizes.pinned_bytes;
      HostPinned host(bytes);
      DevBuf d(bytes);
      const double ms = median_ms(stream, 1, 5, [&](int) {
        if (h2d)
          BENCH_CUDA_CHECK(cudaMemcpyAsync(d.p, host.p, bytes, cudaMemcpyHostToDevice, stream));
        else
          BENCH_CUDA_CHECK(cudaMemcpyAsync(host.p, d.p, bytes, cudaMemcpyDeviceToHost, stream));
      });
      *note = "cudaMemcpyAsync " + std::to_string(bytes >> 20) + " MiB pinned, median of 5";
      return bytes / (ms * 1e-3) / 1e9;
    });
  }

  if (measured_any) {
    c.source = std::string("calibrated on ") + prop.name + " in this run (tau = grid.sync per step" +
               (std::isfinite(sync_us) ? "" : ", else graph node") + "; unmeasured items keep the defaults)";
  }
  std::printf("\n");
  return c;
}

}  // namespace bench
