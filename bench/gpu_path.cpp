#include "bench/gpu_path.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>

#include "bench/arena.h"
#include "bench/calibrate.h"
#include "bench/cuda_check.h"
#include "bench/device_arena.h"
#include "bench/dynrnn_runner.h"
#include "bench/gpu_timing.h"
#include "bench/graph_runner.h"
#include "bench/naive_baseline.h"
#include "bench/naive_kernels.h"
#include "bench/packed_layout.h"
#include "bench/precision_types.h"
#include "bench/progress.h"
#include "bench/rows.h"
#include "bench/sorted_batch.h"
#if defined(DYNRNN_BENCH_HAVE_CUDNN)
#include "bench/cudnn_baseline.h"
#endif

namespace bench {

int gpu_device_count(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + ", " + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0) *why = "cudaGetDeviceCount reported 0 devices";
  return n;
}

namespace {

struct StreamHolder {
  cudaStream_t s = nullptr;
  StreamHolder() { BENCH_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~StreamHolder() {
    if (s) (void)cudaStreamDestroy(s);
  }
};

std::string fmt(double v, const char* f) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string describe(const Ceilings& c) {
  std::ostringstream os;
  auto tf = [](double v) { return v > 0 ? fmt(v / 1e12, "%.1f") + " TFLOP/s" : std::string("unknown"); };
  os << "fp32 " << tf(c.flops_fp32) << ", tf32 " << tf(c.flops_tf32) << ", bf16 " << tf(c.flops_bf16) << ", fp16 "
     << tf(c.flops_fp16) << ", fp64 " << tf(c.flops_fp64) << ", copy " << fmt(c.bw_hbm / 1e12, "%.2f") << " TB/s, tau "
     << fmt(c.tau_s * 1e6, "%.2f") << " us, L2 " << (c.l2_bytes >> 20) << " MiB; " << c.source;
  return os.str();
}

/// True when the CUDA context is unusable (a sticky error such as an illegal address).
bool context_broken(std::string* what) {
  (void)cudaGetLastError();
  const cudaError_t e = cudaDeviceSynchronize();
  if (e == cudaSuccess) return false;
  const cudaError_t again = cudaDeviceSynchronize();
  if (again == cudaSuccess) return false;
  *what = std::string(cudaGetErrorName(again)) + " (" + cudaGetErrorString(again) + ")";
  return true;
}

/// The float64 reference of a problem's data, computed once: dynrnn on the CPU when the training
/// FLOPs are small enough, else dynrnn CUDA in float64. One per reference_key(precision): the
/// 16-bit precisions each have their own, of their rounded data.
struct Reference {
  bool tried = false;
  std::optional<HostResult> result;
  std::string label;
  std::string error;
};

void compute_reference(Reference& ref, const Problem& p, const Options& opt, cudaStream_t stream) {
  if (ref.tried) return;
  ref.tried = true;
  const WorkModel w = work_model(work_input(p, Mode::kTraining, Precision::kFp64), 0, Ceilings{});
  const bool on_cpu = w.flops_full <= opt.cpu_ref_gflop * 1e9;
  ref.label = on_cpu ? "dynrnn-cpu-fp64" : "dynrnn-cuda-fp64";
  try {
    std::unique_ptr<Arena> arena = on_cpu ? make_host_arena() : make_device_arena(stream);
    auto runner = make_dynrnn_runner(p, Precision::kFp64, on_cpu ? dynrnn::Backend::kCpu : dynrnn::Backend::kCuda,
                                     arena.get(), stream, true);
    runner->run(Mode::kTraining, 0);
    ref.result.emplace(runner->fetch(true));
  } catch (const BenchError& e) {
    ref.error = e.what();
  }
}

struct Context {
  const Options& opt;
  Report& report;
  Progress& progress;
  cudaStream_t stream;
  Ceilings ceilings;
  int warmup;
  bool broken = false;
  int status = 0;
};

using Factory = std::function<std::unique_ptr<Runner>(Arena*)>;

/// A byte count as "12.3 MiB" (KiB below 1 MiB), signed with `sign`.
std::string mib(double bytes, bool sign = false) {
  char buf[64];
  const bool small = std::fabs(bytes) < (1 << 20);
  std::snprintf(buf, sizeof buf, sign ? "%+.1f %s" : "%.1f %s", bytes / (small ? 1 << 10 : 1 << 20),
                small ? "KiB" : "MiB");
  return buf;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// swap_memory: the activations a training forward copies to pinned host memory and its backward
/// copies back, per timed call, and that traffic over the call's median time (a lower bound of the
/// link's use: the copies overlap compute; compare with the calibrated pinned bandwidth).
void note_host_traffic(Row& r, Mode mode, size_t host_bytes) {
  if (host_bytes == 0 || mode == Mode::kInference || !(r.median_ms > 0)) return;
  const double bytes = static_cast<double>(host_bytes) * (mode == Mode::kTraining ? 2 : 1);
  add_note(r, "swap: " + mib(bytes) + " to/from pinned host memory per call, " +
                  fixed(bytes / (r.median_ms * 1e-3) / 1e9, 2) + " GB/s");
}

/// Sets up one implementation, verifies it once, times it, and fills the row. Never throws.
Row measure(Context& ctx, const Problem& p, Precision prec, Mode mode, const std::string& impl,
            const std::string& variant, const Factory& factory, Reference& ref, bool is_reference_impl,
            bool error_is_failure = true) {
  Row r = base_row(p, prec, mode, impl, variant, true);
  try {
    // The reference first, so that a float64 GPU reference never shares the device with this row's
    // buffers (and its allocations stay out of the memory column).
    if (ctx.opt.verify) compute_reference(ref, p, ctx.opt, ctx.stream);
    const size_t mem0 = device_bytes_in_use();
    std::unique_ptr<Arena> arena = make_device_arena(ctx.stream);
    std::unique_ptr<Runner> runner = factory(arena.get());
    BENCH_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    const size_t mem1 = device_bytes_in_use();
    r.workspace_bytes = static_cast<double>(runner->workspace_bytes());
    r.reserve_bytes = static_cast<double>(runner->reserve_bytes());

    if (ctx.opt.verify) {
      const bool grads = mode_has_backward(mode);
      runner->run(verification_mode(mode), 0);
      const HostResult got = runner->fetch(grads);
      const std::string why = runner->unverifiable_reason();
      if (!why.empty()) {
        r.verify = "NotVerified";
        r.note = why;
      } else {
        if (is_reference_impl && prec == Precision::kFp64 && ref.label == "dynrnn-cuda-fp64") {
          r.verify = "NotVerified";
          r.verify_ref = "is the reference";
        } else if (ref.result) {
          const Verdict v = compare_results(got, *ref.result, prec, p.shape.cell, grads);
          r.verify = v.status;
          r.verify_ref = reference_label(ref.label, prec);
          if (v.fwd_err >= 0) r.fwd_err = v.fwd_err;
          if (v.grad_err >= 0) r.grad_err = v.grad_err;
          if (v.status != "Passed" && !v.detail.empty()) r.note = v.detail;
          if (v.status == "Failed") ctx.status = 1;
        } else {
          r.verify = "NotVerified";
          r.verify_ref = ref.label + " failed: " + ref.error;
        }
      }
    }
    if (mode == Mode::kBackward) runner->run(Mode::kForward, 0);
    const std::vector<double> samples =
        time_gpu_ms(ctx.stream, ctx.warmup, ctx.opt.iters, [&](int i) { runner->run(mode, i); });
    const size_t mem2 = device_bytes_in_use();
    r.peak_mem_bytes = static_cast<double>(std::max(mem1, mem2) - std::min(mem0, std::max(mem1, mem2)));
    const WorkModel w = work_model(work_input(p, mode, prec), ctx.ceilings.flops_for(prec), ctx.ceilings);
    fill_timing(r, samples, w, p.shape.layers, true);
    note_host_traffic(r, mode, runner->host_reserve_bytes());
  } catch (const BenchUnsupported& e) {
    r.status = "unsupported";
    r.note = e.what();
  } catch (const BenchError& e) {
    r.status = "error";
    r.note = e.what();
    if (error_is_failure) ctx.status = 1;
    std::string what;
    if (context_broken(&what)) {
      ctx.broken = true;
      r.note += "; the CUDA context is unusable (" + what + "), stopping";
    }
  }
  return r;
}

void emit(Context& ctx, Row r, const Shape* shape = nullptr) {
  if (shape && r.status == "ok") {
    std::string knobs;
    if (shape->activation_budget > 0 || shape->swap_memory) {
      knobs = r.impl == "dynrnn"
                  ? "swap_memory with a " +
                        (shape->activation_budget > 0 ? std::to_string(shape->activation_budget >> 20) + " MiB"
                                                      : std::string("two-chunk")) +
                        " device activation budget"
                  : "no activation budget knob: saved activations stay in device memory";
    }
    if (r.impl == "dynrnn" && shape->recompute) knobs += (knobs.empty() ? "" : ", ") + std::string("recompute");
    if (r.impl == "dynrnn" && shape->parallel_iterations > 0) {
      knobs += (knobs.empty() ? "" : ", ") + std::string("parallel_iterations ") +
               std::to_string(shape->parallel_iterations);
    }
    if (!knobs.empty()) add_note(r, knobs);
  }
  ctx.progress.clear();
  ctx.report.add(r);
}

#if defined(DYNRNN_BENCH_HAVE_CUDNN)
/// cuDNN in one data layout: every algorithm is set up, verified and timed; the STANDARD row is
/// emitted, and the fastest verified algorithm's row as well when that is another one. Variants:
/// "STANDARD" and "best=<algorithm>" padded, "packed-STANDARD" and "packed-best=<algorithm>" packed.
void emit_cudnn_rows(Context& ctx, const Problem& p, Precision prec, Mode mode, const Shape& shape, CudnnSession& cudnn,
                     CudnnLayout layout, Reference& ref) {
  const bool training = mode != Mode::kInference;
  const bool packed = layout == CudnnLayout::kPacked;
  const std::string prefix = packed ? "packed-" : "";
  struct Tried {
    int algo;
    Row row;
  };
  std::vector<Tried> tried;
  for (int algo : cudnn_algorithms()) {
    if (ctx.broken) break;
    const Factory f = [&](Arena* a) { return make_cudnn_runner(p, prec, algo, layout, training, cudnn, a); };
    const bool standard = algo == cudnn_algorithms().front();
    tried.push_back(
        {algo, measure(ctx, p, prec, mode, "cudnn", prefix + cudnn_algorithm_name(algo), f, ref, false, standard)});
  }
  // STANDARD always exists; the persistent algorithms are valid only for some shapes,
  // so their errors are reported in the summary, not counted as failures.
  std::ostringstream summary;
  const Tried* best = nullptr;
  for (size_t k = 0; k < tried.size(); ++k) {
    const Tried& t = tried[k];
    summary << (k ? "; " : "") << cudnn_algorithm_name(t.algo) << " ";
    if (t.row.status == "ok") {
      summary << fmt(t.row.median_ms, "%.4g") << " ms";
      if (t.row.verify == "Failed") summary << " (verification failed)";
      if (t.row.verify != "Failed" && (!best || t.row.median_ms < best->row.median_ms)) best = &t;
    } else {
      summary << "invalid (" << t.row.note.substr(0, 100) << ")";
    }
  }
  std::string notes;
  // A stacked shape (stack_bidirectional) is cuDNN's own model, weights mapped one to one; only
  // TF's independent stacks need the zero blocks.
  if (p.shape.bidirectional && p.shape.layers > 1 && !p.stacked()) {
    const WorkModel tf = work_model(work_input(p, mode, prec, false), 0, Ceilings{});
    const WorkModel cat = work_model(work_input(p, mode, prec, true), 0, Ceilings{});
    notes =
        "cuDNN concatenates directions between layers: TF's independent stacks are mapped with zero "
        "blocks (" +
        fmt(100.0 * (cat.flops_full / tf.flops_full - 1.0), "%.0f") + "% more FLOPs executed)";
  }
  auto joined = [](const std::string& a, const std::string& b) {
    return a.empty() || b.empty() ? a + b : a + "; " + b;
  };
  auto with_note = [&](Row r, const std::string& extra) {
    r.note = joined(r.note, extra);
    return r;
  };
  // As a PyTorch user packs in the data loader: the timed calls read and write packed buffers only.
  if (packed) notes = joined(notes, "batch sorted and packed once, untimed");
  if (tried.empty()) return;
  const Row& standard = tried.front().row;
  const bool standard_best = best && best->algo == tried.front().algo;
  std::string standard_note;
  if (standard_best)
    standard_note = "best valid algorithm; tried: " + summary.str();
  else if (!best)
    standard_note = "no valid algorithm; tried: " + summary.str();
  emit(ctx, with_note(with_note(standard, notes), standard_note), &shape);
  if (best && !standard_best) {
    Row b = with_note(with_note(best->row, notes), "tried: " + summary.str());
    b.variant = prefix + "best=" + cudnn_algorithm_name(best->algo);
    emit(ctx, b, &shape);
  }
}
#endif

}  // namespace

int run_gpu_path(const Options& opt, Report& report) {
  int dev = 0;
  cudaDeviceProp prop{};
  int driver = 0, runtime = 0;
  try {
    BENCH_CUDA_CHECK(cudaGetDevice(&dev));
    BENCH_CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    BENCH_CUDA_CHECK(cudaDriverGetVersion(&driver));
    BENCH_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  } catch (const BenchError& e) {
    std::fprintf(stderr, "dynrnn-bench: %s\n", e.what());
    return 1;
  }
  int blas_major = 0, blas_minor = 0, blas_patch = 0;
  (void)cublasGetProperty(MAJOR_VERSION, &blas_major);
  (void)cublasGetProperty(MINOR_VERSION, &blas_minor);
  (void)cublasGetProperty(PATCH_LEVEL, &blas_patch);
  auto ver = [](int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); };
  report.set_meta("device", std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) +
                                ", " + std::to_string(prop.multiProcessorCount) + " SMs, " +
                                std::to_string(prop.l2CacheSize >> 20) + " MiB L2, " +
                                std::to_string(prop.totalGlobalMem >> 30) + " GiB)");
  report.set_meta("driver", "CUDA driver API " + ver(driver));
  report.set_meta("cuda_runtime", ver(runtime));
  report.set_meta("cublas",
                  std::to_string(blas_major) + "." + std::to_string(blas_minor) + "." + std::to_string(blas_patch));

  StreamHolder stream;
  std::string cudnn_state;
#if defined(DYNRNN_BENCH_HAVE_CUDNN)
  std::unique_ptr<CudnnSession> cudnn;
  if (opt.impl_cudnn || opt.calibrate) {
    try {
      cudnn = std::make_unique<CudnnSession>(stream.s);
      cudnn_state = CudnnSession::runtime_version() + " (headers " + CudnnSession::header_version() + ")";
    } catch (const BenchError& e) {
      cudnn_state = std::string("unavailable: ") + e.what();
    }
  } else {
    cudnn_state = "not used (--impl without cudnn)";
  }
#else
  cudnn_state = "not built (cuDNN was not found at configure time)";
#endif
  report.set_meta("cudnn", cudnn_state);

  Ceilings ceilings = default_ceilings(prop.name, prop.l2CacheSize);
  if (opt.calibrate) {
    std::function<double()> t1;
#if defined(DYNRNN_BENCH_HAVE_CUDNN)
    if (cudnn) {
      t1 = [&]() {
        auto arena = make_device_arena(stream.s);
        return cudnn_t1_fixed_cost_us(*cudnn, arena.get());
      };
    }
#endif
    try {
      ceilings =
          calibrate(stream.s, ceilings, report, t1, opt.calibrate_tiny ? CalibrationSizes::tiny() : CalibrationSizes{});
    } catch (const BenchError& e) {
      std::fprintf(stderr, "dynrnn-bench: calibration failed: %s\n", e.what());
    }
  }
  report.set_meta("ceilings", describe(ceilings));
  if (opt.calibrate_only) {
    report.print_header();
    return 0;
  }

  std::vector<Shape> shapes;
  std::string err;
  if (!select_shapes(opt, false, &shapes, &err)) {
    std::fprintf(stderr, "dynrnn-bench: %s\n", err.c_str());
    return 2;
  }
  std::vector<Precision> precisions = opt.precisions;
  if (precisions.empty()) {
    precisions = opt.set == "extended" && !opt.adhoc
                     ? std::vector<Precision>{Precision::kFp32, Precision::kTf32, Precision::kBf16}
                     : std::vector<Precision>{Precision::kFp32};
  }
  report.print_header();

  Progress progress(!opt.quiet);
  Context ctx{opt, report, progress, stream.s, ceilings, opt.warmup >= 0 ? opt.warmup : 5};
  const size_t impls = (opt.impl_dynrnn ? 1 : 0) + (opt.impl_naive ? 1 : 0) + (opt.impl_cudnn ? 1 : 0);
  const size_t total = shapes.size() * precisions.size() * opt.modes.size() * impls;
  size_t done = 0;

  for (const Shape& shape : shapes) {
    if (ctx.broken) break;
    // Host data: fewer rotated sets when one set is large (x and dy in float64 on the host).
    const double set_bytes = 8.0 * static_cast<double>(shape.T * shape.B) *
                             static_cast<double>(shape.I + shape.H * (shape.bidirectional ? 2 : 1));
    const int sets = set_bytes * opt.num_sets > double(2u << 30) ? 1 : opt.num_sets;
    std::optional<Problem> problem;
    std::string problem_error;
    try {
      problem.emplace(make_problem(shape, sets, opt.seed));
    } catch (const BenchError& e) {
      problem_error = e.what();
    }
    std::map<Precision, Reference> refs;
    for (Precision prec : precisions) {
      // bf16/fp16 rows run on (and are verified against the reference of) the data rounded to 16 bits.
      std::optional<Problem> rounded;
      if (problem && is_16bit(prec)) rounded.emplace(rounded_problem(*problem, prec));
      Reference& ref = refs[reference_key(prec)];
      for (Mode mode : opt.modes) {
        if (ctx.broken) break;
        const std::string what = shape.id + " " + precision_name(prec) + " " + mode_name(mode);
        if (!problem) {
          done += impls;
          Row r;
          r.shape_id = shape.id;
          r.status = "error";
          r.note = problem_error;
          ctx.status = 1;
          emit(ctx, r);
          continue;
        }
        const Problem& p = rounded ? *rounded : *problem;
        const bool training = mode != Mode::kInference;

        if (opt.impl_dynrnn) {
          progress.update(++done, total, what + " dynrnn");
          const Factory f = [&](Arena* a) {
            return make_dynrnn_runner(p, prec, dynrnn::Backend::kCuda, a, ctx.stream, training);
          };
          Row row = measure(ctx, p, prec, mode, "dynrnn", "", f, ref, true);
          if (training && (shape.activation_budget > 0 || shape.swap_memory)) {
            // The same without swap_memory, where it fits: what the budget costs in time and saves
            // in device memory (issue: swap_memory done properly).
            const Factory in_memory = [&](Arena* a) {
              return make_dynrnn_runner(p, prec, dynrnn::Backend::kCuda, a, ctx.stream, training,
                                        [](dynrnn::RnnSpec& s) { s.swap_memory = false; });
            };
            const Row mem = measure(ctx, p, prec, mode, "dynrnn", "in-memory", in_memory, ref, true,
                                    /*error_is_failure=*/false);
            if (row.status == "ok" && mem.status == "ok") {
              add_note(row, "vs in-memory: " + fixed(row.median_ms / mem.median_ms, 2) + "x the time, " +
                                mib(row.peak_mem_bytes - mem.peak_mem_bytes, true) + " of device memory");
            }
            emit(ctx, row, &shape);
            emit(ctx, mem);
          } else {
            emit(ctx, row, &shape);
          }
          // The same calls captured once and replayed as CUDA graphs (dynrnn never synchronizes
          // or allocates inside a call, so every call is capturable).
          const Factory g = [&](Arena* a) { return make_graph_runner(f(a), ctx.stream); };
          emit(ctx, measure(ctx, p, prec, mode, "dynrnn", "graph", g, ref, true), &shape);
          // RnnSpec::algorithm = kPersistent: forward and backward steps in one cooperative kernel
          // per chunk with the recurrent weights in shared memory (layers that do not fit run per step).
          const Factory persistent = [&](Arena* a) {
            return make_dynrnn_runner(p, prec, dynrnn::Backend::kCuda, a, ctx.stream, training, [](dynrnn::RnnSpec& s) {
              s.algorithm = dynrnn::RecurrentAlgorithm::kPersistent;
            });
          };
          emit(ctx, measure(ctx, p, prec, mode, "dynrnn", "persistent", persistent, ref, true), &shape);
          // RnnSpec::pipeline_projections: each layer's next input projection on its own stream
          // beside the steps, instead of before them (against the plain row: what that overlap gives).
          const Factory pipelined = [&](Arena* a) {
            return make_dynrnn_runner(p, prec, dynrnn::Backend::kCuda, a, ctx.stream, training,
                                      [](dynrnn::RnnSpec& s) { s.pipeline_projections = true; });
          };
          emit(ctx, measure(ctx, p, prec, mode, "dynrnn", "pipelined", pipelined, ref, true), &shape);
          // (Not with dropout: masks follow the caller's rows, so a batch sorted by its caller draws others.)
          if (lengths_ragged(p.lengths, p.shape.T) && !ctx.broken && shape.dropout_keep == 1.0) {
            // The batch sorted by decreasing length once, untimed, as for cuDNN's packed rows: dynrnn
            // then runs it as it is instead of permuting it (the plain rows, with
            // host_sequence_length, run the batch sorted by length too).
            const Factory sorted = [&](Arena* a) {
              return make_sorted_batch_runner(p, [&](const Problem& q) {
                return make_dynrnn_runner(q, prec, dynrnn::Backend::kCuda, a, ctx.stream, training);
              });
            };
            Row row = measure(ctx, p, prec, mode, "dynrnn", "sorted", sorted, ref, true);
            add_note(row, kSortedBatchNote);
            emit(ctx, row, &shape);
            // Without host_sequence_length dynrnn cannot know the lengths on the host: all T steps
            // run over the whole batch, masked (TF's and cuDNN's padded work). Against the plain
            // row: what the length-aware steps save.
            const Factory device_lengths = [&](Arena* a) {
              return make_dynrnn_runner(p, prec, dynrnn::Backend::kCuda, a, ctx.stream, training, {}, false);
            };
            Row dl = measure(ctx, p, prec, mode, "dynrnn", "device-lengths", device_lengths, ref, true);
            add_note(dl, "no host_sequence_length: every step over the whole batch");
            emit(ctx, dl, &shape);
          }
        }

        if (opt.impl_cudnn && !ctx.broken) {
          progress.update(++done, total, what + " cudnn");
          Row skipped = base_row(p, prec, mode, "cudnn", "", true);
          skipped.status = "skipped";
#if defined(DYNRNN_BENCH_HAVE_CUDNN)
          if (!cudnn) {
            skipped.note = "cuDNN " + cudnn_state;
            emit(ctx, skipped);
          } else if (shape.dropout_keep < 1.0) {
            skipped.note = kNoDropoutWrapper;
            emit(ctx, skipped);
          } else if (shape.cell == Cell::kGru) {
            // TF's GRUCell applies the reset gate before the candidate matmul; cuDNN's GRU after it.
            const bool g2 = shape.id == "G2" || shape.id.rfind("G2-", 0) == 0;
            skipped.note = std::string("cuDNN has no reset-before (TF GRUCell) GRU; its GRU is the reset-after cell ") +
                           (g2 ? "G1 runs (gru_ra, same dimensions)" : "gru_ra (--cell gru_ra)");
            emit(ctx, skipped);
          } else {
            emit_cudnn_rows(ctx, p, prec, mode, shape, *cudnn, CudnnLayout::kPadded, ref);
            // Packed only for a ragged batch: with equal lengths the packed layout is the padded
            // one, byte for byte and in the same order, so it would time the same thing again.
            if (lengths_ragged(p.lengths, p.shape.T) && !ctx.broken) {
              progress.update(done, total, what + " cudnn packed");
              const std::string why = packed_unsupported_reason(make_packed_layout(p.lengths, p.shape.T));
              if (why.empty()) {
                emit_cudnn_rows(ctx, p, prec, mode, shape, *cudnn, CudnnLayout::kPacked, ref);
              } else {
                Row r = base_row(p, prec, mode, "cudnn", "packed", true);
                r.status = "unsupported";
                r.note = "cuDNN packed layout: " + why;
                emit(ctx, r);
              }
            }
          }
#else
          skipped.note = "cuDNN " + cudnn_state;
          emit(ctx, skipped);
#endif
        }

        if (opt.impl_naive && !ctx.broken && shape.dropout_keep < 1.0) {
          progress.update(++done, total, what + " naive");
          Row skipped = base_row(p, prec, mode, "naive", "", true);
          skipped.status = "skipped";
          skipped.note = kNoDropoutWrapper;
          emit(ctx, skipped);
        } else if (opt.impl_naive && !ctx.broken) {
          progress.update(++done, total, what + " naive");
          const bool tf32 = prec == Precision::kTf32;
          const Factory f = [&](Arena* a) {
            return with_storage_type(prec, [&](auto tag) {
              using T = typename decltype(tag)::type;
              return make_naive_runner<T>(p, a, training, make_cuda_naive_ops<T>(ctx.stream, tf32));
            });
          };
          emit(ctx, measure(ctx, p, prec, mode, "naive", "", f, ref, false), &shape);
        }
      }
    }
  }
  progress.finish();
  if (ctx.broken) std::fprintf(stderr, "dynrnn-bench: stopped early: the CUDA context became unusable\n");
  return ctx.status;
}

}  // namespace bench
