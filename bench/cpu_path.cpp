#include "bench/cpu_path.h"

#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "bench/arena.h"
#include "bench/dynrnn_runner.h"
#include "bench/naive_baseline.h"
#include "bench/precision_types.h"
#include "bench/progress.h"
#include "bench/rows.h"
#include "bench/sorted_batch.h"

namespace bench {
namespace {

constexpr const char* kCpuReference = "dynrnn-cpu-fp64";

HostResult cpu_reference(const Problem& p) {
  auto arena = make_host_arena();
  auto ref = make_dynrnn_runner(p, Precision::kFp64, dynrnn::Backend::kCpu, arena.get(), nullptr, true);
  ref->run(Mode::kTraining, 0);
  return ref->fetch(true);
}

}  // namespace

int run_cpu_path(const Options& opt, Report& report) {
  std::vector<Shape> shapes;
  std::string err;
  if (!select_shapes(opt, true, &shapes, &err)) {
    std::fprintf(stderr, "dynrnn-bench: %s\n", err.c_str());
    return 2;
  }
  std::vector<Precision> precisions = opt.precisions;
  // bf16 costs about as much as fp32 here (float arithmetic on 16-bit storage), so the default run
  // checks the 16-bit path too.
  if (precisions.empty()) precisions = {Precision::kFp32, Precision::kBf16, Precision::kFp64};
  const int warmup = opt.warmup >= 0 ? opt.warmup : 2;
  if (opt.impl_cudnn) std::printf("# cudnn          skipped: the cuDNN baseline needs a GPU\n");
  report.print_header();

  // dynrnn's rows, and on a ragged batch also dynrnn on the batch sorted by length (bench/sorted_batch.h).
  struct Impl {
    const char* name;
    const char* variant;
  };
  auto impls_of = [&](const Shape& shape) {
    std::vector<Impl> v;
    if (opt.impl_dynrnn) v.push_back({"dynrnn", ""});
    // A batch sorted by its caller draws other rows' dropout masks; the naive baseline has no dropout.
    const bool dropout = shape.dropout_keep < 1.0;
    if (opt.impl_dynrnn && shape.lengths != Lengths::kFixed && !dropout) v.push_back({"dynrnn", "sorted"});
    if (opt.impl_naive && !dropout) v.push_back({"naive", ""});
    return v;
  };
  Progress progress(!opt.quiet);
  size_t total = 0;
  for (const Shape& shape : shapes) total += precisions.size() * opt.modes.size() * impls_of(shape).size();
  size_t done = 0;
  int status = 0;
  for (const Shape& shape : shapes) {
    std::optional<Problem> problem;
    std::string problem_error;
    try {
      problem.emplace(make_problem(shape, opt.num_sets, opt.seed));
    } catch (const BenchError& e) {
      problem_error = e.what();
    }
    // One float64 reference per reference_key: bf16/fp16 rows run on, and are checked against the
    // reference of, the data rounded to 16 bits.
    struct Reference {
      std::optional<HostResult> result;
      std::string error;
    };
    std::map<Precision, Reference> refs;
    for (Precision prec : precisions) {
      std::optional<Problem> rounded;
      if (problem && is_16bit(prec)) rounded.emplace(rounded_problem(*problem, prec));
      Reference& ref = refs[reference_key(prec)];
      for (Mode mode : opt.modes) {
        for (const Impl& impl_variant : impls_of(shape)) {
          const char* impl = impl_variant.name;
          const std::string variant = impl_variant.variant;
          const bool is_dynrnn = std::string(impl) == "dynrnn";
          ++done;
          progress.update(done, total,
                          shape.id + " " + precision_name(prec) + " " + mode_name(mode) + " " + impl +
                              (variant.empty() ? "" : ":" + variant));
          if (!problem) {
            Row r;
            r.shape_id = shape.id;
            r.impl = impl;
            r.variant = variant;
            r.status = "error";
            r.note = problem_error;
            progress.clear();
            report.add(r);
            status = 1;
            continue;
          }
          const Problem& p = rounded ? *rounded : *problem;
          Row r = base_row(p, prec, mode, impl, variant, false);
          if (prec == Precision::kTf32) {
            r.status = "unsupported";
            r.note = "tf32 is a tensor-core GEMM mode: GPU only";
            progress.clear();
            report.add(r);
            continue;
          }
          try {
            const bool training = mode != Mode::kInference;
            auto arena = make_host_arena();
            std::unique_ptr<Runner> runner;
            if (is_dynrnn && variant == "sorted") {
              runner = make_sorted_batch_runner(p, [&](const Problem& q) {
                return make_dynrnn_runner(q, prec, dynrnn::Backend::kCpu, arena.get(), nullptr, training);
              });
            } else if (is_dynrnn) {
              runner = make_dynrnn_runner(p, prec, dynrnn::Backend::kCpu, arena.get(), nullptr, training);
            } else {
              runner = with_storage_type(prec, [&](auto tag) {
                using T = typename decltype(tag)::type;
                return make_naive_runner<T>(p, arena.get(), training, make_cpu_naive_ops<T>());
              });
            }
            r.peak_mem_bytes = static_cast<double>(arena->allocated());
            r.workspace_bytes = static_cast<double>(runner->workspace_bytes());
            r.reserve_bytes = static_cast<double>(runner->reserve_bytes());
            if (opt.verify) {
              const Mode vm = verification_mode(mode);
              runner->run(vm, 0);
              const HostResult got = runner->fetch(mode_has_backward(mode));
              if (is_dynrnn && variant.empty() && prec == Precision::kFp64) {
                r.verify = "NotVerified";
                r.verify_ref = "is the reference";
              } else {
                if (!ref.result && ref.error.empty()) {
                  try {
                    ref.result.emplace(cpu_reference(p));
                  } catch (const BenchError& e) {
                    ref.error = e.what();
                  }
                }
                if (ref.result) {
                  const Verdict v = compare_results(got, *ref.result, prec, shape.cell, mode_has_backward(mode));
                  r.verify = v.status;
                  r.verify_ref = reference_label(kCpuReference, prec);
                  if (v.fwd_err >= 0) r.fwd_err = v.fwd_err;
                  if (v.grad_err >= 0) r.grad_err = v.grad_err;
                  if (!v.detail.empty() && v.status != "Passed") r.note = v.detail;
                  if (v.status == "Failed") status = 1;
                } else {
                  r.verify_ref = "reference failed: " + ref.error;
                }
              }
            }
            if (mode == Mode::kBackward) runner->run(Mode::kForward, 0);
            const auto samples = time_host_ms(warmup, opt.iters, [&](int i) { runner->run(mode, i); });
            const WorkModel w = work_model(work_input(p, mode, prec), 0, Ceilings{});
            fill_timing(r, samples, w, shape.layers, false);
            if (!is_dynrnn) r.note = r.note.empty() ? "naive op graph on the host" : r.note;
            if (variant == "sorted") add_note(r, kSortedBatchNote);
          } catch (const BenchError& e) {
            r.status = "error";
            r.note = e.what();
            status = 1;
          }
          progress.clear();
          report.add(r);
        }
      }
    }
  }
  progress.finish();
  return status;
}

}  // namespace bench
