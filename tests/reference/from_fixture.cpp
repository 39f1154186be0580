#include "from_fixture.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

namespace ref {
namespace {

[[noreturn]] void fail(const std::string& fixture, const std::string& msg) {
  throw std::runtime_error("fixture '" + fixture + "': " + msg);
}

bool absent(const std::map<std::string, std::string>& a, const std::string& k) {
  auto it = a.find(k);
  return it == a.end() || it->second.empty() || it->second == "None" || it->second == "none";
}

double to_double(const std::string& s, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || errno != 0 || end != s.c_str() + s.size())
    throw std::runtime_error("bad number '" + s + "' for " + what);
  return v;
}

// A DropoutWrapper keep probability, in (0, 1].
double to_keep_prob(const std::string& s, const std::string& what) {
  const double keep = to_double(s, what);
  if (!(keep > 0.0 && keep <= 1.0)) throw std::runtime_error(what + " '" + s + "' is not in (0, 1]");
  return keep;
}

// A decimal uint64 (the whole range: dropout seeds use the high bits too).
uint64_t to_uint64(const std::string& s, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0])) || errno != 0 || end != s.c_str() + s.size())
    throw std::runtime_error("bad unsigned 64-bit integer '" + s + "' for " + what);
  return static_cast<uint64_t>(v);
}

int to_int(const std::string& s, const std::string& what) {
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || errno != 0 || end != s.c_str() + s.size())
    throw std::runtime_error("bad integer '" + s + "' for " + what);
  return static_cast<int>(v);
}

bool to_bool(const std::string& s, const std::string& what) {
  if (s == "1" || s == "True" || s == "true") return true;
  if (s == "0" || s == "False" || s == "false") return false;
  throw std::runtime_error("bad flag '" + s + "' for " + what);
}

std::string key(const std::string& dir, int layer, const std::string& leaf) {
  return dir + "/" + std::to_string(layer) + "/" + leaf;
}

std::vector<Cell> stack_of(const golden::Fixture& fx, const std::string& dir) {
  std::vector<Cell> cells;
  const auto lines = fx.cells_of(dir);
  for (size_t l = 0; l < lines.size(); ++l) {
    if (lines[l]->layer != static_cast<int>(l)) fail(fx.name, dir + " cell layers are not 0..n-1");
    try {
      cells.push_back(cell_from_fixture(*lines[l]));
    } catch (const std::exception& e) {
      fail(fx.name, "cell " + dir + "/" + std::to_string(l) + ": " + e.what());
    }
  }
  return cells;
}

std::vector<double> values_of(const golden::Fixture& fx, const std::string& name, size_t expected) {
  const golden::Tensor& t = fx.at(name);
  if (t.values.size() != expected)
    fail(fx.name, "tensor '" + name + "' has " + std::to_string(t.values.size()) + " values, expected " +
                      std::to_string(expected));
  return t.values;
}

// The weights of direction `direction` (0: fw, 1: bw). Layer input widths from layer_input_width(problem, ...):
// with stack_bidirectional, layer l > 0 reads layer l-1's concatenated output, O_fw(l-1) + O_bw(l-1) wide.
std::vector<Params> weights_of(const golden::Fixture& fx, const Problem& problem, int direction) {
  const std::string dir = direction == 0 ? "fw" : "bw";
  const std::vector<Cell>& cells = direction == 0 ? problem.fw : problem.bw;
  std::vector<Params> w;
  for (size_t l = 0; l < cells.size(); ++l) {
    Params p;
    const auto shapes = param_shapes(cells[l], layer_input_width(problem, direction, static_cast<int>(l)));
    const std::string prefix = dir + "/" + std::to_string(l) + "/";
    for (const auto& [name, shape] : shapes) {
      size_t n = 1;
      for (int d : shape) n *= static_cast<size_t>(d);
      const golden::Tensor& t = fx.at(prefix + name);
      if (t.dims.size() != shape.size()) fail(fx.name, "tensor '" + prefix + name + "' has the wrong rank");
      for (size_t i = 0; i < shape.size(); ++i)
        if (t.dims[i] != shape[i]) fail(fx.name, "tensor '" + prefix + name + "' has the wrong shape");
      p[name] = values_of(fx, prefix + name, n);
    }
    // No weight tensor the cell configuration does not explain.
    for (const auto& kv : fx.tensors)
      if (kv.first.compare(0, prefix.size(), prefix) == 0 && !shapes.count(kv.first.substr(prefix.size())))
        fail(fx.name, "unexpected weight tensor '" + kv.first + "' for this cell configuration");
    w.push_back(std::move(p));
  }
  return w;
}

}  // namespace

Cell cell_from_fixture(const golden::CellLine& line) {
  const auto& a = line.attrs;
  static const char* known[] = {"kind",
                                "units",
                                "activation",
                                "forget_bias",
                                "use_peepholes",
                                "cell_clip",
                                "num_proj",
                                "proj_clip",
                                "residual",
                                "input_keep_prob",
                                "output_keep_prob",
                                "state_keep_prob",
                                "variational_recurrent"};
  for (const auto& kv : a) {
    bool ok = false;
    for (const char* k : known) ok = ok || kv.first == k;
    if (!ok) throw std::runtime_error("unknown cell attribute '" + kv.first + "'");
  }
  Cell c;
  if (absent(a, "kind")) throw std::runtime_error("cell has no kind");
  const std::string& kind = a.at("kind");
  if (kind == "basic_rnn")
    c.kind = CellKind::BasicRNN;
  else if (kind == "basic_lstm")
    c.kind = CellKind::BasicLSTM;
  else if (kind == "lstm")
    c.kind = CellKind::LSTM;
  else if (kind == "gru")
    c.kind = CellKind::GRU;
  else if (kind == "gru_ra")
    c.kind = CellKind::GRUResetAfter;
  else
    throw std::runtime_error("unknown cell kind '" + kind + "'");
  if (absent(a, "units")) throw std::runtime_error("cell has no units");
  c.units = to_int(a.at("units"), "units");
  if (!absent(a, "activation")) {
    const std::string& act = a.at("activation");
    if (act == "relu")
      c.relu = true;
    else if (act != "tanh")
      throw std::runtime_error("unsupported activation '" + act + "'");
  }
  if (!absent(a, "forget_bias")) c.forget_bias = to_double(a.at("forget_bias"), "forget_bias");
  if (!absent(a, "use_peepholes")) c.peepholes = to_bool(a.at("use_peepholes"), "use_peepholes");
  if (!absent(a, "cell_clip")) {
    c.has_cell_clip = true;
    c.cell_clip = to_double(a.at("cell_clip"), "cell_clip");
  }
  if (!absent(a, "num_proj")) c.num_proj = to_int(a.at("num_proj"), "num_proj");
  if (!absent(a, "proj_clip")) {
    c.has_proj_clip = true;
    c.proj_clip = to_double(a.at("proj_clip"), "proj_clip");
  }
  if (!absent(a, "residual")) c.residual = to_bool(a.at("residual"), "residual");
  // DropoutWrapper (absent: keep 1, not variational); state_keep_prob drops the new state's h (not c).
  if (!absent(a, "input_keep_prob")) c.input_keep_prob = to_keep_prob(a.at("input_keep_prob"), "input_keep_prob");
  if (!absent(a, "output_keep_prob")) c.output_keep_prob = to_keep_prob(a.at("output_keep_prob"), "output_keep_prob");
  if (!absent(a, "state_keep_prob")) c.state_keep_prob = to_keep_prob(a.at("state_keep_prob"), "state_keep_prob");
  if (!absent(a, "variational_recurrent"))
    c.variational_recurrent = to_bool(a.at("variational_recurrent"), "variational_recurrent");
  return c;
}

Problem problem_from_fixture(const golden::Fixture& fx) {
  Problem p;
  p.T = static_cast<int>(fx.meta_int("T"));
  p.B = static_cast<int>(fx.meta_int("B"));
  p.D = static_cast<int>(fx.meta_int("D"));
  p.time_major = fx.meta_int("time_major") != 0;
  const bool bidi = fx.meta_int("bidirectional") != 0;
  p.fw = stack_of(fx, "fw");
  p.bw = stack_of(fx, "bw");
  if (p.fw.empty()) fail(fx.name, "no fw cells");
  if (bidi != !p.bw.empty()) fail(fx.name, "'bidirectional' disagrees with the bw cell lines");
  // Header "stack_bidirectional 1" (absent: 0): tf.contrib.rnn.stack_bidirectional_dynamic_rnn, layer l
  // of both directions one bidirectional_dynamic_rnn over layer l-1's concatenated output.
  p.stack_bidirectional = fx.meta.count("stack_bidirectional") && fx.meta_int("stack_bidirectional") != 0;
  if (p.stack_bidirectional && (!bidi || p.fw.size() != p.bw.size()))
    fail(fx.name, "'stack_bidirectional' needs bidirectional 1 and as many fw as bw layers");
  p.x = values_of(fx, "x", static_cast<size_t>(p.T) * p.B * p.D);
  p.has_seq_len = fx.meta_int("has_seq_len") != 0;
  if (p.has_seq_len) {
    for (double v : values_of(fx, "seq_len", static_cast<size_t>(p.B))) {
      if (v != std::floor(v)) fail(fx.name, "seq_len holds a non-integer value");
      p.seq_len.push_back(static_cast<int>(v));
    }
  }
  // Header "dropout_seed <decimal>" (absent: 0), the seed of the DropoutWrapper masks.
  if (fx.meta.count("dropout_seed")) {
    try {
      p.dropout_seed = to_uint64(fx.meta.at("dropout_seed"), "dropout_seed");
    } catch (const std::exception& e) {
      fail(fx.name, e.what());
    }
  }
  p.has_initial_state = fx.meta_int("has_initial_state") != 0;
  p.w_fw = weights_of(fx, p, 0);
  p.w_bw = weights_of(fx, p, 1);
  if (p.has_initial_state) {
    for (int d = 0; d < 2; ++d) {
      const std::string dir = d == 0 ? "fw" : "bw";
      const std::vector<Cell>& cells = d == 0 ? p.fw : p.bw;
      for (size_t l = 0; l < cells.size(); ++l)
        for (const std::string& leaf : leaves(cells[l])) {
          const std::string k = key(dir, static_cast<int>(l), leaf);
          p.init[k] = values_of(fx, "init/" + k, static_cast<size_t>(p.B) * state_width(cells[l], leaf.c_str()));
        }
    }
  }
  const std::string err = check(p);
  if (!err.empty()) fail(fx.name, "invalid problem: " + err);
  return p;
}

Upstream upstream_from_fixture(const golden::Fixture& fx) {
  Upstream u;
  if (fx.has("dout/fw")) u.dout_fw = fx.at("dout/fw").values;
  if (fx.has("dout/bw")) u.dout_bw = fx.at("dout/bw").values;
  const std::string prefix = "dfinal/";
  for (const auto& kv : fx.tensors)
    if (kv.first.compare(0, prefix.size(), prefix) == 0) u.dfinal[kv.first.substr(prefix.size())] = kv.second.values;
  return u;
}

}  // namespace ref
