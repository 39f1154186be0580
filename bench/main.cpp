// bench/main.cpp — dynrnn-bench: parse the command line, pick the GPU or the CPU path, write the
// table, CSV and JSON. See --help and bench/results/README.md.
#include <cstdio>
#include <ctime>
#include <exception>
#include <string>

#include "bench/cli.h"
#include "bench/cpu_path.h"
#include "bench/gpu_path.h"
#include "bench/report.h"

#ifndef DYNRNN_BENCH_GIT_COMMIT
#define DYNRNN_BENCH_GIT_COMMIT "unknown"
#endif

namespace {

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void list_shapes(const std::vector<bench::Shape>& shapes) {
  std::printf("%-28s %-8s %6s %5s %5s %5s %3s %-8s %-8s %s\n", "id", "cell", "T", "B", "I", "H", "L", "dir", "lengths",
              "source");
  for (const bench::Shape& s : shapes) {
    // bi-stack: stack_bidirectional_dynamic_rnn (layers read both directions); bi: independent stacks.
    const char* dir = s.stacked() ? "bi-stack" : (s.bidirectional ? "bi" : "uni");
    std::printf("%-28s %-8s %6lld %5lld %5lld %5lld %3d %-8s %-8s %s\n", s.id.c_str(), bench::cell_name(s.cell),
                static_cast<long long>(s.T), static_cast<long long>(s.B), static_cast<long long>(s.I),
                static_cast<long long>(s.H), s.layers, dir, bench::lengths_name(s.lengths), s.source.c_str());
  }
}

/// The CPU path (no device, or --cpu) or the GPU path; returns the exit status.
int run_paths(const bench::Options& opt, bench::Report& report, bool cpu_path, const std::string& why_no_gpu) {
  if (!cpu_path) return bench::run_gpu_path(opt, report);
  if (opt.force_cpu) {
    std::printf("--cpu: running the CPU path on small shapes; GPU numbers need a GPU\n");
  } else {
    std::printf("No CUDA device: running the CPU path on small shapes; GPU numbers need a GPU\n");
    if (!why_no_gpu.empty()) std::printf("(%s)\n", why_no_gpu.c_str());
  }
  if (opt.calibrate) std::printf("--calibrate needs a GPU: skipped\n");
  if (opt.set_given) {
    std::printf("--set %s needs a GPU: the CPU path runs its small shapes derived from the core set\n",
                opt.set.c_str());
  }
  report.set_meta("device", "cpu (dynrnn Backend::kCpu, host wall-clock timing)");
  return opt.calibrate_only ? 0 : bench::run_cpu_path(opt, report);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Options opt;
  std::string error;
  switch (bench::parse_cli(argc, argv, &opt, &error)) {
    case bench::ParseResult::kHelp: std::fputs(bench::help_text(argv[0]).c_str(), stdout); return 0;
    case bench::ParseResult::kError: std::fprintf(stderr, "dynrnn-bench: %s\n", error.c_str()); return 2;
    case bench::ParseResult::kOk: break;
  }

  std::string why_no_gpu;
  const int devices = opt.force_cpu ? 0 : bench::gpu_device_count(&why_no_gpu);
  const bool cpu_path = opt.force_cpu || devices == 0;

  if (opt.list_shapes) {
    std::vector<bench::Shape> shapes;
    // An explicit --set lists that set even where the CPU path would run its small shapes instead.
    if (!bench::select_shapes(opt, cpu_path && !opt.set_given, &shapes, &error)) {
      std::fprintf(stderr, "dynrnn-bench: %s\n", error.c_str());
      return 2;
    }
    list_shapes(shapes);
    return 0;
  }

  bench::Report report;
  if (!report.open(opt.csv, opt.json, &error)) {
    std::fprintf(stderr, "dynrnn-bench: %s\n", error.c_str());
    return 2;
  }
  report.set_meta("tool", "dynrnn-bench");
  report.set_meta("date_utc", utc_now());
  report.set_meta("commit", DYNRNN_BENCH_GIT_COMMIT " (at configure time)");
  report.set_meta("command", opt.command_line);

  int status = 0;
  try {
    status = run_paths(opt, report, cpu_path, why_no_gpu);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dynrnn-bench: %s\n", e.what());
    status = 1;
  }
  if (!report.finish(&error)) {
    std::fprintf(stderr, "dynrnn-bench: %s\n", error.c_str());
    if (status == 0) status = 1;
  }
  if (!opt.csv.empty()) std::printf("wrote %s\n", opt.csv.c_str());
  if (!opt.json.empty()) std::printf("wrote %s\n", opt.json.c_str());
  return status;
}
