#include "bench/cli.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace bench {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream is(s);
  while (std::getline(is, cur, sep)) {
    if (!cur.empty()) out.push_back(cur);
  }
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool parse_int(const std::string& s, int64_t lo, int64_t* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  const long long x = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0' || x < lo) return false;
  *v = x;
  return true;
}

template <typename I>
bool parse_int_list(const std::string& s, int64_t lo, std::vector<I>* out) {
  std::vector<I> v;
  for (const std::string& item : split(s, ',')) {
    int64_t x = 0;
    if (!parse_int(item, lo, &x)) return false;
    v.push_back(static_cast<I>(x));
  }
  if (v.empty()) return false;
  *out = v;
  return true;
}

}  // namespace

std::string help_text(const char* prog) {
  std::ostringstream os;
  os << "Usage: " << prog << " [options]\n"
     << "\n"
     << "Times dynrnn (TF dynamic_rnn semantics) against cuDNN and a naive per-step cuBLAS baseline,\n"
     << "with verification, FLOP rates in two conventions and percent of the performance.md roofline.\n"
     << "Without a CUDA device it runs the dynrnn CPU backend (and the naive op graph on the host) on\n"
     << "small shapes derived from the core set, timed with the host clock.\n"
     << "\n"
     << "Shapes\n"
     << "  --set core|extended      named shape set of performance.md 3.2 (default core). extended =\n"
     << "                           DeepBench training list + haste N x H x C grid + inference B=1,2,4\n"
     << "  --shapes ID[,ID...]      only these ids of the set (e.g. A1,D7,H1-B32; CPU path: A1-cpu,...)\n"
     << "  --list-shapes            print the selected shapes and exit\n"
     << "  Ad-hoc shape (any of the following replaces the named set; T/B/I/H/layers take lists\n"
     << "  a,b,c and the bench runs their cartesian product):\n"
     << "  --cell lstm|gru|gru_ra|rnn_tanh|rnn_relu\n"
     << "                                      lstm: TF LSTMCell (default); gru: TF GRUCell (reset gate\n"
     << "                                      before the candidate matmul: cuDNN has no such cell);\n"
     << "                                      gru_ra: Keras GRUCell(reset_after=True), the GRU of cuDNN\n"
     << "                                      and PyTorch; rnn_tanh, rnn_relu: BasicRNNCell\n"
     << "  --T N   --B N   --I N   --H N       (defaults 100, 64, I = H, 512)\n"
     << "  --layers N                          stack depth (default 1)\n"
     << "  --bidirectional                     TF bidirectional_dynamic_rnn (independent stacks)\n"
     << "  --stack-bidirectional               with --bidirectional: TF stack_bidirectional_dynamic_rnn:\n"
     << "                                      layer l > 0 reads both directions of layer l-1\n"
     << "                                      concatenated (2H inputs), the bidirectional stack of cuDNN\n"
     << "                                      and PyTorch (nn.LSTM(bidirectional=True, num_layers=L)),\n"
     << "                                      so cuDNN's weights map one to one. The core shape A3 (and\n"
     << "                                      A3-cpu) is stacked. Without it, a multi-layer --bidirectional\n"
     << "                                      shape is TF's independent stacks, which cuDNN runs with zero\n"
     << "                                      weight blocks (its rows note the extra FLOPs)\n"
     << "  --lengths fixed|uniform|skewed      fixed: no sequence_length; uniform: U[T/4,T];\n"
     << "                                      skewed: 90% U[T/10,T/5], 10% U[T/2,T] (default fixed)\n"
     << "\n"
     << "What to run\n"
     << "  --precision P[,P...]     fp32 | tf32 | fp64 | bf16 | fp16. Default fp32 (extended: fp32,tf32,bf16;\n"
     << "                           CPU: fp32,bf16,fp64). tf32: float32 storage, TF32 tensor-core GEMMs (GPU\n"
     << "                           only). bf16, fp16: every buffer 16-bit (2-byte elements), GEMMs on tensor\n"
     << "                           cores accumulating in float32, cell math in float32; cuDNN runs them with\n"
     << "                           mathPrec FLOAT and tensor-op math (a data type this cuDNN rejects gives\n"
     << "                           \"unsupported\" rows); the naive baseline stores every op's result in 16\n"
     << "                           bits, summing dW step by step as TF does\n"
     << "  --mode M[,M...]          inference | forward | backward | training | all (default\n"
     << "                           inference,training). forward = training forward (fills the reserve);\n"
     << "                           backward = backward only; training = forward + backward\n"
     << "  --impl I[,I...]          dynrnn, cudnn, naive (default all three). cudnn runs every algorithm\n"
     << "                           and reports STANDARD and the fastest verified one (best=ALGO) in the\n"
     << "                           padded layout (zero fill); for a ragged batch (lengths not all equal)\n"
     << "                           also in the packed layout PyTorch feeds cuDNN (packed-STANDARD,\n"
     << "                           packed-best=ALGO): the batch is sorted by length and packed once before\n"
     << "                           timing, as a data loader would, so packing and unpacking are not timed.\n"
     << "                           Equal lengths pack to the padded bytes: no packed rows. A batch with a\n"
     << "                           zero length gets an unsupported packed row\n"
     << "  --cpu                    force the CPU path even when a GPU is present\n"
     << "\n"
     << "Measurement\n"
     << "  --warmup N               untimed runs before timing (default 5 GPU, 2 CPU)\n"
     << "  --iters N                timed runs, each timed alone (default 20; median, p10, p90)\n"
     << "  --sets N                 input sets rotated between runs (default 3; fewer for huge shapes)\n"
     << "  --seed N                 data seed (default 1234)\n"
     << "  --no-verify              skip the verification run (verify column NotVerified)\n"
     << "\ndynrnn memory knobs (every shape; cuDNN and naive have none)\n"
     << "  --parallel-iterations K  steps per chunk (projection and weight-gradient GEMMs, wavefront)\n"
     << "  --swap                   swap_memory: saved activations beyond a device ring go to pinned host\n"
     << "  --budget-mib N           with --swap: device bytes for the ring (default: the smallest, 2 chunks)\n"
     << "  --recompute              keep only states; regenerate gate pre-activations in backward\n"
     << "  --dropout KEEP           also run each shape as <id>+dropout: every layer in a DropoutWrapper\n"
     << "                           with input, output and state keep KEEP (dynrnn rows only, verified\n"
     << "                           against dynrnn float64 with the same masks; the plain shape's rows\n"
     << "                           in the same run give the cost of the masks)\n"
     << "  --cpu-ref-gflop X        largest training GFLOP count verified against the float64 CPU\n"
     << "                           reference; larger shapes use dynrnn CUDA float64 (default 5)\n"
     << "  --calibrate              first measure this card's ceilings (performance.md 3.4: GEMM\n"
     << "                           FP32/TF32/bf16/fp16/FP64, D2D copy, launch latency eager vs graph,\n"
     << "                           tiny cuBLAS GEMM chains, grid.sync, pinned H2D/D2H, cuDNN T=1)\n"
     << "                           and use them for %roofline instead of the performance.md defaults\n"
     << "  --calibrate-only         calibrate and exit\n"
     << "  --calibration-sizes S    full (default: performance.md 3.4's sizes) or tiny (every item's\n"
     << "                           code on sizes an emulated device runs in seconds: for tests, the\n"
     << "                           numbers mean nothing)\n"
     << "\n"
     << "Output\n"
     << "  --csv FILE               one row per (shape, precision, mode, implementation)\n"
     << "  --json FILE              rows plus device/driver/versions/commit and calibration\n"
     << "  --quiet                  no progress line on stderr\n"
     << "  --help                   this text\n"
     << "\n"
     << "Columns: median and p10..p90 time per call; us/step = time / (T_loop * layers); TF/s = FLOPs\n"
     << "incl. the input GEMMs / time; TF/s_rec = DeepBench convention (recurrent GEMMs only); both count\n"
     << "useful row-steps (sum of lengths) and 1x/2x/3x the forward FLOPs for forward/backward/training.\n"
     << "%roof = performance.md 2.5 floor / time, with the binding bound (compute, memory, dependency);\n"
     << "the floor counts the precision's element size (fp64 8, fp32/tf32 4, bf16/fp16 2 bytes) and its\n"
     << "GEMM ceiling (bf16/fp16: the tensor-core rate of that type).\n"
     << "mem = peak device memory of the implementation (cudaMemGetInfo delta; CPU: bytes allocated);\n"
     << "cuDNN packed rows hold x, dy, y and dx packed (sum of lengths rows, not T * B).\n"
     << "verify = Passed/Failed/NotVerified against a float64 reference, checked once before timing\n"
     << "(cuDNN packed rows: outputs and dx unpacked, final states and their gradients put back in batch\n"
     << "order, outside the timed calls).\n"
     << "bf16/fp16 rows run on inputs, weights and upstream gradients rounded to that type and are checked\n"
     << "against the float64 reference of the same rounded data, within 16u (outputs, final state) and\n"
     << "48u (gradients; ReLU cells + 4 sqrt(u) for relu's kink), u the unit roundoff (bf16 2^-8, fp16\n"
     << "2^-11); see bench/problem.cpp.\n"
     << "\n"
     << "Exit status: 0 when every row ran (or was skipped, or is unsupported) and nothing failed\n"
     << "verification; 1 when a verification failed or a row errored; 2 on a command-line error.\n";
  return os.str();
}

ParseResult parse_cli(int argc, char** argv, Options* opt, std::string* error) {
  Options& o = *opt;
  std::ostringstream cmd;
  for (int i = 0; i < argc; ++i) cmd << (i ? " " : "") << argv[i];
  o.command_line = cmd.str();
  bool I_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    auto need = [&](std::string* v) -> bool {
      if (has_value) {
        *v = value;
        return true;
      }
      if (i + 1 >= argc) {
        *error = arg + " needs a value";
        return false;
      }
      *v = argv[++i];
      return true;
    };
    auto bad = [&](const std::string& v, const char* expected) {
      *error = "invalid value '" + v + "' for " + arg + " (expected " + expected + ")";
      return ParseResult::kError;
    };
    std::string v;
    if (arg == "--help" || arg == "-h") return ParseResult::kHelp;
    if (arg == "--set") {
      if (!need(&v)) return ParseResult::kError;
      if (v != "core" && v != "extended") return bad(v, "core or extended");
      o.set = v;
      o.set_given = true;
    } else if (arg == "--shapes") {
      if (!need(&v)) return ParseResult::kError;
      o.shape_ids = split(v, ',');
      if (o.shape_ids.empty()) return bad(v, "a comma-separated list of shape ids");
    } else if (arg == "--list-shapes") {
      o.list_shapes = true;
    } else if (arg == "--cell") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_cell(v, &o.cell)) return bad(v, "lstm, gru, gru_ra, rnn_tanh or rnn_relu");
      o.adhoc = true;
    } else if (arg == "--T") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_int_list(v, 1, &o.T)) return bad(v, "integers >= 1, comma-separated");
      o.adhoc = true;
    } else if (arg == "--B") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_int_list(v, 1, &o.B)) return bad(v, "integers >= 1, comma-separated");
      o.adhoc = true;
    } else if (arg == "--I") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_int_list(v, 1, &o.I)) return bad(v, "integers >= 1, comma-separated");
      I_given = true;
      o.adhoc = true;
    } else if (arg == "--H") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_int_list(v, 1, &o.H)) return bad(v, "integers >= 1, comma-separated");
      o.adhoc = true;
    } else if (arg == "--layers") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_int_list(v, 1, &o.layers)) return bad(v, "integers >= 1, comma-separated");
      o.adhoc = true;
    } else if (arg == "--bidirectional") {
      o.bidirectional = true;
      o.adhoc = true;
    } else if (arg == "--stack-bidirectional") {
      o.stack_bidirectional = true;
      o.adhoc = true;
    } else if (arg == "--lengths") {
      if (!need(&v)) return ParseResult::kError;
      if (!parse_lengths(v, &o.lengths)) return bad(v, "fixed, uniform or skewed");
      o.adhoc = true;
    } else if (arg == "--precision") {
      if (!need(&v)) return ParseResult::kError;
      o.precisions.clear();
      for (const std::string& item : split(v, ',')) {
        Precision p;
        if (!parse_precision(item, &p)) return bad(item, "fp32, tf32, fp64, bf16 or fp16");
        o.precisions.push_back(p);
      }
      if (o.precisions.empty()) return bad(v, "fp32, tf32, fp64, bf16 or fp16");
    } else if (arg == "--mode") {
      if (!need(&v)) return ParseResult::kError;
      o.modes.clear();
      for (const std::string& item : split(v, ',')) {
        if (item == "all") {
          o.modes = {Mode::kInference, Mode::kForward, Mode::kBackward, Mode::kTraining};
          continue;
        }
        Mode m;
        if (!parse_mode(item, &m)) return bad(item, "inference, forward, backward, training or all");
        if (std::find(o.modes.begin(), o.modes.end(), m) == o.modes.end()) o.modes.push_back(m);
      }
      if (o.modes.empty()) return bad(v, "inference, forward, backward, training or all");
    } else if (arg == "--impl") {
      if (!need(&v)) return ParseResult::kError;
      o.impl_dynrnn = o.impl_cudnn = o.impl_naive = false;
      for (const std::string& item : split(v, ',')) {
        if (item == "dynrnn")
          o.impl_dynrnn = true;
        else if (item == "cudnn")
          o.impl_cudnn = true;
        else if (item == "naive")
          o.impl_naive = true;
        else
          return bad(item, "dynrnn, cudnn or naive");
      }
      if (!o.impl_dynrnn && !o.impl_cudnn && !o.impl_naive) return bad(v, "dynrnn, cudnn or naive");
    } else if (arg == "--warmup" || arg == "--iters" || arg == "--sets") {
      if (!need(&v)) return ParseResult::kError;
      int64_t x = 0;
      const int64_t lo = arg == "--warmup" ? 0 : 1;
      if (!parse_int(v, lo, &x) || x > 1000000) return bad(v, lo ? "an integer >= 1" : "an integer >= 0");
      if (arg == "--warmup")
        o.warmup = static_cast<int>(x);
      else if (arg == "--iters")
        o.iters = static_cast<int>(x);
      else
        o.num_sets = static_cast<int>(x);
    } else if (arg == "--seed") {
      if (!need(&v)) return ParseResult::kError;
      int64_t x = 0;
      if (!parse_int(v, 0, &x)) return bad(v, "an integer >= 0");
      o.seed = static_cast<uint64_t>(x);
    } else if (arg == "--cpu-ref-gflop" || arg == "--dropout") {
      if (!need(&v)) return ParseResult::kError;
      char* end = nullptr;
      const double x = std::strtod(v.c_str(), &end);
      if (arg == "--dropout") {
        if (*end != '\0' || !(x > 0 && x < 1)) return bad(v, "a keep probability in (0, 1)");
        o.dropout_keep = x;
      } else {
        if (*end != '\0' || !(x >= 0)) return bad(v, "a number >= 0");
        o.cpu_ref_gflop = x;
      }
    } else if (arg == "--csv") {
      if (!need(&o.csv)) return ParseResult::kError;
    } else if (arg == "--json") {
      if (!need(&o.json)) return ParseResult::kError;
    } else if (arg == "--calibrate") {
      o.calibrate = true;
    } else if (arg == "--calibrate-only") {
      o.calibrate = o.calibrate_only = true;
    } else if (arg == "--calibration-sizes") {
      if (!need(&v)) return ParseResult::kError;
      if (v != "full" && v != "tiny") return bad(v, "full or tiny");
      o.calibrate_tiny = v == "tiny";
    } else if (arg == "--cpu") {
      o.force_cpu = true;
    } else if (arg == "--swap") {
      o.swap_memory = true;
    } else if (arg == "--recompute") {
      o.recompute = true;
    } else if (arg == "--budget-mib" || arg == "--parallel-iterations") {
      if (!need(&v)) return ParseResult::kError;
      int64_t x = 0;
      if (!parse_int(v, 1, &x) || x > (int64_t(1) << 30)) return bad(v, "an integer >= 1");
      if (arg == "--budget-mib") {
        o.budget_mib = x;
        o.swap_memory = true;
      } else {
        o.parallel_iterations = static_cast<int>(x);
      }
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else if (arg == "--no-verify") {
      o.verify = false;
    } else {
      *error = "unknown option " + arg + " (see --help)";
      return ParseResult::kError;
    }
    if (has_value && (arg == "--list-shapes" || arg == "--bidirectional" || arg == "--stack-bidirectional" ||
                      arg == "--calibrate" || arg == "--calibrate-only" || arg == "--cpu" || arg == "--quiet" ||
                      arg == "--no-verify" || arg == "--swap" || arg == "--recompute")) {
      *error = arg + " takes no value";
      return ParseResult::kError;
    }
  }
  if (!I_given) o.I.clear();
  if (o.stack_bidirectional && !o.bidirectional) {
    *error = "--stack-bidirectional needs --bidirectional (it stacks bidirectional layers)";
    return ParseResult::kError;
  }
  if (o.adhoc && o.set_given) {
    *error =
        "--set and an ad-hoc shape (--cell/--T/--B/--I/--H/--layers/--bidirectional/--stack-bidirectional/--lengths) "
        "are exclusive";
    return ParseResult::kError;
  }
  return ParseResult::kOk;
}

namespace {

/// With --dropout: after each shape, the same shape with every dynrnn layer in a DropoutWrapper.
void add_dropout_copies(const Options& opt, std::vector<Shape>* shapes) {
  if (opt.dropout_keep >= 1.0) return;
  std::vector<Shape> v;
  for (const Shape& s : *shapes) {
    v.push_back(s);
    Shape d = s;
    d.id += "+dropout";
    d.dropout_keep = opt.dropout_keep;
    char keep[32];
    std::snprintf(keep, sizeof keep, "%g", opt.dropout_keep);
    d.source += std::string("; DropoutWrapper keep ") + keep;
    v.push_back(d);
  }
  *shapes = std::move(v);
}

}  // namespace

bool select_shapes(const Options& opt, bool cpu_path, std::vector<Shape>* out, std::string* error) {
  std::vector<Shape> all;
  if (opt.adhoc) {
    for (int64_t T : opt.T) {
      for (int64_t B : opt.B) {
        for (int64_t H : opt.H) {
          std::vector<int64_t> Is = opt.I.empty() ? std::vector<int64_t>{H} : opt.I;
          for (int64_t I : Is) {
            for (int L : opt.layers) {
              Shape s;
              s.id = "adhoc-" + std::to_string(all.size() + 1);
              s.cell = opt.cell;
              s.T = T;
              s.B = B;
              s.I = I;
              s.H = H;
              s.layers = L;
              s.bidirectional = opt.bidirectional;
              s.stack_bidirectional = opt.stack_bidirectional;
              s.lengths = opt.lengths;
              s.source = "command line: " + shape_flags(s);
              all.push_back(s);
            }
          }
        }
      }
    }
  } else if (cpu_path) {
    all = cpu_shapes();
  } else {
    all = opt.set == "extended" ? extended_shapes() : core_shapes();
  }
  for (Shape& s : all) {
    s.swap_memory = opt.swap_memory;
    if (opt.budget_mib > 0) s.activation_budget = opt.budget_mib << 20;
    s.recompute = opt.recompute;
    s.parallel_iterations = opt.parallel_iterations;
  }
  if (opt.shape_ids.empty()) {
    *out = all;
    add_dropout_copies(opt, out);
    return true;
  }
  out->clear();
  for (const std::string& id : opt.shape_ids) {
    bool found = false;
    for (const Shape& s : all) {
      // On the CPU path a core id also names its small derived shape (A1 -> A1-cpu).
      if (lower(s.id) == lower(id) || (cpu_path && !opt.adhoc && lower(s.id) == lower(id) + "-cpu")) {
        out->push_back(s);
        found = true;
      }
    }
    if (!found) {
      std::string ids;
      for (size_t k = 0; k < all.size() && k < 40; ++k) ids += (k ? "," : "") + all[k].id;
      if (all.size() > 40) ids += ",...";
      *error = "--shapes: no shape '" + id + "' in this set (" + ids + ")";
      return false;
    }
  }
  add_dropout_copies(opt, out);
  return true;
}

}  // namespace bench
