// bench/cli.h — dynrnn-bench's command line: parsing, --help, and the shape list it selects.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/shapes.h"
#include "bench/types.h"

namespace bench {

struct Options {
  std::string set = "core";
  bool set_given = false;
  std::vector<std::string> shape_ids;  ///< --shapes filter (exact ids, case-insensitive)

  // Ad-hoc shape (any of these flags switches from the named set to the ad-hoc grid).
  bool adhoc = false;
  Cell cell = Cell::kLstm;
  std::vector<int64_t> T = {100}, B = {64}, I, H = {512};  ///< I empty: I = H
  std::vector<int> layers = {1};
  bool bidirectional = false;
  bool stack_bidirectional = false;  ///< --stack-bidirectional (needs --bidirectional)
  Lengths lengths = Lengths::kFixed;

  std::vector<Precision> precisions;  ///< empty: default (fp32; extended set: fp32,tf32,bf16; CPU: fp32,bf16,fp64)
  std::vector<Mode> modes = {Mode::kInference, Mode::kTraining};
  int warmup = -1;  ///< -1: 5 on the GPU, 2 on the CPU
  int iters = 20;
  int num_sets = 3;
  bool impl_dynrnn = true, impl_cudnn = true, impl_naive = true;
  std::string csv, json;
  bool calibrate = false, calibrate_only = false;
  bool calibrate_tiny = false;  ///< --calibration-sizes tiny: every item's code on tiny sizes (tests)
  bool force_cpu = false;
  bool list_shapes = false;
  bool quiet = false;
  bool verify = true;
  // dynrnn's memory knobs, applied to every shape (RnnSpec fields of the same names).
  bool swap_memory = false;
  int64_t budget_mib = 0;  ///< activation_memory_budget with --swap (0: the smallest ring)
  bool recompute = false;
  int parallel_iterations = 0;  ///< 0: dynrnn's default (32)
  /// --dropout: each selected shape once more with every dynrnn layer in a DropoutWrapper of these
  /// input, output and state keep probabilities (1: no such copies).
  double dropout_keep = 1.0;
  double cpu_ref_gflop = 5.0;
  uint64_t seed = 1234;
  std::string command_line;
};

enum class ParseResult { kOk, kHelp, kError };

ParseResult parse_cli(int argc, char** argv, Options* opt, std::string* error);
std::string help_text(const char* prog);

/// The shapes to run. cpu_path: without an ad-hoc shape, the small CPU shapes derived from the
/// core set (the --shapes filter applies to their ids). Fails if the filter matches nothing.
bool select_shapes(const Options& opt, bool cpu_path, std::vector<Shape>* out, std::string* error);

}  // namespace bench
