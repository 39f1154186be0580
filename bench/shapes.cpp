#include "bench/shapes.h"

#include <algorithm>
#include <random>
#include <sstream>

namespace bench {

const char* cell_name(Cell c) {
  switch (c) {
    case Cell::kLstm: return "lstm";
    case Cell::kGru: return "gru";
    case Cell::kGruResetAfter: return "gru_ra";
    case Cell::kRnnTanh: return "rnn_tanh";
    case Cell::kRnnRelu: return "rnn_relu";
  }
  return "?";
}

bool parse_cell(const std::string& s, Cell* c) {
  if (s == "lstm")
    *c = Cell::kLstm;
  else if (s == "gru")
    *c = Cell::kGru;
  else if (s == "gru_ra")
    *c = Cell::kGruResetAfter;
  else if (s == "rnn_tanh")
    *c = Cell::kRnnTanh;
  else if (s == "rnn_relu")
    *c = Cell::kRnnRelu;
  else
    return false;
  return true;
}

const char* lengths_name(Lengths l) {
  switch (l) {
    case Lengths::kFixed: return "fixed";
    case Lengths::kUniform: return "uniform";
    case Lengths::kSkewed: return "skewed";
  }
  return "?";
}

bool parse_lengths(const std::string& s, Lengths* l) {
  if (s == "fixed")
    *l = Lengths::kFixed;
  else if (s == "uniform")
    *l = Lengths::kUniform;
  else if (s == "skewed")
    *l = Lengths::kSkewed;
  else
    return false;
  return true;
}

int cell_gates(Cell c) {
  switch (c) {
    case Cell::kLstm: return 4;
    case Cell::kGru:
    case Cell::kGruResetAfter: return 3;
    default: return 1;
  }
}

namespace {

Shape make(const std::string& id, const std::string& source, Cell cell, int64_t T, int64_t B, int64_t I, int64_t H,
           int layers = 1, bool bi = false, Lengths len = Lengths::kFixed) {
  Shape s;
  s.id = id;
  s.source = source;
  s.cell = cell;
  s.T = T;
  s.B = B;
  s.I = I;
  s.H = H;
  s.layers = layers;
  s.bidirectional = bi;
  s.lengths = len;
  return s;
}

}  // namespace

std::vector<Shape> core_shapes() {
  const Cell L = Cell::kLstm;
  std::vector<Shape> v;
  v.push_back(make("A1", "fastrnns / Appleyard", L, 100, 64, 512, 512));
  v.push_back(make("A2", "Appleyard blog", L, 100, 64, 512, 512, 4));
  // A3 is the bidirectional stack of cuDNN and PyTorch (nn.LSTM(bidirectional=True, num_layers=4)):
  // TF's stack_bidirectional_dynamic_rnn, layers above the first reading both directions of the
  // layer below, so that all three implementations run the same model.
  Shape a3 =
      make("A3", "A2 bidirectional, stacked (cuDNN / PyTorch bidirectional stack)", L, 100, 64, 512, 512, 4, true);
  a3.stack_bidirectional = true;
  v.push_back(a3);
  const int64_t d_batches[4] = {16, 32, 64, 128};
  for (int i = 0; i < 4; ++i) {
    v.push_back(make("D" + std::to_string(i + 1), "DeepBench training LSTM", L, 25, d_batches[i], 1024, 1024));
  }
  v.push_back(make("D5", "DeepBench", L, 25, 64, 2048, 2048));
  v.push_back(make("D6", "DeepBench", L, 25, 128, 4096, 4096));
  v.push_back(make("D7", "DeepBench", L, 150, 32, 256, 256));
  // G1 is DeepBench's GRU, cuDNN's reset-after form (Keras GRUCell(reset_after=True)): dynrnn, cuDNN
  // and the naive baseline all run it. G2 is TF's GRUCell on the same dimensions, which cuDNN has no
  // cell for.
  v.push_back(
      make("G1", "DeepBench GRU (reset-after form: cuDNN, PyTorch, Keras)", Cell::kGruResetAfter, 375, 32, 1536, 1536));
  v.push_back(make("G2", "TF-GRU form of G1 (reset before the candidate matmul)", Cell::kGru, 375, 32, 1536, 1536));
  v.push_back(make("S1", "SMALL_H PR", L, 2560, 3, 368, 40, 4));
  v.push_back(make("S2", "SMALL_H PR", L, 1314, 20, 344, 32, 3));
  for (int64_t b : {1, 32, 128}) {
    v.push_back(make("H1-B" + std::to_string(b), "haste grid", L, 50, b, 128, 512));
  }
  v.push_back(make("V1", "variable length U[50,200]", L, 200, 64, 512, 512, 2, false, Lengths::kUniform));
  v.push_back(make("V2", "variable length, skewed (90% <= 100)", L, 500, 64, 256, 1024, 1, false, Lengths::kSkewed));
  Shape m1 = make("M1", "swap / long sequence", L, 5000, 32, 1024, 1024, 4);
  m1.activation_budget = int64_t(2) << 30;
  v.push_back(m1);
  return v;
}

std::vector<Shape> extended_shapes() {
  std::vector<Shape> v;
  // DeepBench training list (code/kernels/rnn_problems.h, training_set): hidden, batch, steps, cell; I = H.
  struct Db {
    int h, b, t;
    Cell cell;
  };
  // DeepBench's GRU is cuDNN's (reset after the recurrent matmul), so its shapes run gru_ra.
  const Cell V = Cell::kRnnRelu, L = Cell::kLstm, G = Cell::kGruResetAfter;
  const Db db[] = {
      {1760, 16, 50, V},   {1760, 32, 50, V},   {1760, 64, 50, V},   {1760, 128, 50, V}, {2048, 16, 50, V},
      {2048, 32, 50, V},   {2048, 64, 50, V},   {2048, 128, 50, V},  {2560, 16, 50, V},  {2560, 32, 50, V},
      {2560, 64, 50, V},   {2560, 128, 50, V},  {512, 16, 25, L},    {512, 32, 25, L},   {512, 64, 25, L},
      {512, 128, 25, L},   {1024, 16, 25, L},   {1024, 32, 25, L},   {1024, 64, 25, L},  {1024, 128, 25, L},
      {2048, 16, 25, L},   {2048, 32, 25, L},   {2048, 64, 25, L},   {2048, 128, 25, L}, {4096, 16, 25, L},
      {4096, 32, 25, L},   {4096, 64, 25, L},   {4096, 128, 25, L},  {1536, 8, 50, L},   {1536, 16, 50, L},
      {1536, 32, 50, L},   {256, 16, 150, L},   {256, 32, 150, L},   {256, 64, 150, L},  {2816, 32, 750, G},
      {2816, 32, 375, G},  {2816, 32, 187, G},  {2048, 32, 1500, G}, {2048, 32, 750, G}, {2048, 32, 375, G},
      {2048, 32, 187, G},  {1536, 32, 1500, G}, {1536, 32, 750, G},  {1536, 32, 375, G}, {1536, 32, 187, G},
      {2560, 32, 1500, G}, {2560, 32, 750, G},  {2560, 32, 375, G},  {2560, 32, 187, G}, {512, 32, 1, G},
      {1024, 32, 1500, G}, {1024, 64, 1500, G},
  };
  int n = 0;
  for (const Db& d : db) {
    std::ostringstream id;
    id << "DB" << ++n << "-" << cell_name(d.cell) << "-H" << d.h << "-B" << d.b << "-T" << d.t;
    // DeepBench's "vanilla" cell is ReLU (cuDNN RNN_RELU in its cuDNN driver).
    v.push_back(make(id.str(), "DeepBench training_set", d.cell, d.t, d.b, d.h, d.h));
  }
  // haste benchmarks/benchmark_lstm.cc grid: N in {1,16,32,64,128}, H in {128..4096}, C in {64..512}, T = 50.
  for (int64_t N : {1, 16, 32, 64, 128}) {
    for (int64_t H : {128, 256, 512, 768, 1024, 1536, 2048, 3072, 4096}) {
      for (int64_t C : {64, 128, 256, 512}) {
        std::ostringstream id;
        id << "HG-N" << N << "-H" << H << "-C" << C;
        v.push_back(make(id.str(), "haste N x H x C grid", Cell::kLstm, 50, N, C, H));
      }
    }
  }
  // Inference shapes with B in {1, 2, 4}, derived from the core set (A1, D2, D5, D7, G1, G2, H1).
  for (const Shape& c : core_shapes()) {
    if (c.id != "A1" && c.id != "D2" && c.id != "D5" && c.id != "D7" && c.id != "G1" && c.id != "G2" && c.id != "H1-B1")
      continue;
    for (int64_t b : {1, 2, 4}) {
      if (c.id == "H1-B1" && b == 1) continue;
      Shape s = c;
      s.id = (c.id == "H1-B1" ? std::string("H1") : c.id) + "-inf-B" + std::to_string(b);
      s.source = c.id + " at inference batch";
      s.B = b;
      v.push_back(s);
    }
  }
  return v;
}

std::vector<Shape> cpu_shapes() {
  const Cell L = Cell::kLstm, G = Cell::kGru;
  std::vector<Shape> v;
  v.push_back(make("A1-cpu", "A1 at T=20 B=4 H=32", L, 20, 4, 32, 32));
  v.push_back(make("A2-cpu", "A2 at T=20 B=4 H=32, 2 layers", L, 20, 4, 32, 32, 2));
  Shape a3 = make("A3-cpu", "A3 at T=20 B=4 H=32, 2 layers, bidirectional, stacked", L, 20, 4, 32, 32, 2, true);
  a3.stack_bidirectional = true;
  v.push_back(a3);
  v.push_back(make("G1-cpu", "G1 (reset-after GRU) at T=20 B=4 H=32", Cell::kGruResetAfter, 20, 4, 32, 32));
  v.push_back(make("G2-cpu", "G2 (TF GRU) at T=20 B=4 H=32", G, 20, 4, 32, 32));
  v.push_back(
      make("V1-cpu", "V1 at T=20 B=4 H=32, 2 layers, uniform lengths", L, 20, 4, 32, 32, 2, false, Lengths::kUniform));
  v.push_back(
      make("V2-cpu", "V2 (I = H/4) at T=20 B=4, GRU, skewed lengths", G, 20, 4, 8, 32, 1, false, Lengths::kSkewed));
  return v;
}

namespace {

int32_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  if (hi < lo) hi = lo;
  std::uniform_int_distribution<int64_t> d(lo, hi);
  return static_cast<int32_t>(d(rng));
}

}  // namespace

std::vector<int32_t> make_lengths(const Shape& s, uint64_t seed) {
  std::vector<int32_t> len(static_cast<size_t>(s.B), static_cast<int32_t>(s.T));
  if (s.lengths == Lengths::kFixed || s.B == 0) return len;
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  const int64_t T = s.T;
  if (s.lengths == Lengths::kUniform) {
    for (auto& l : len) l = uniform_int(rng, std::max<int64_t>(1, T / 4), T);
  } else {
    const int64_t n_long = std::max<int64_t>(1, (s.B + 9) / 10);
    for (int64_t b = 0; b < s.B; ++b) {
      len[b] = b < n_long ? uniform_int(rng, std::max<int64_t>(1, T / 2), T)
                          : uniform_int(rng, std::max<int64_t>(1, T / 10), std::max<int64_t>(1, T / 5));
    }
    std::shuffle(len.begin(), len.end(), rng);
  }
  // One row runs the whole T, so that every variant loops T_max steps (as the shape table says).
  len[static_cast<size_t>(uniform_int(rng, 0, s.B - 1))] = static_cast<int32_t>(T);
  return len;
}

int64_t loop_steps(const std::vector<int32_t>& lengths, int64_t T) {
  int64_t m = 0;
  for (int32_t l : lengths) m = std::max<int64_t>(m, std::min<int64_t>(std::max<int32_t>(l, 0), T));
  return m;
}

int64_t sum_lengths(const std::vector<int32_t>& lengths) {
  int64_t s = 0;
  for (int32_t l : lengths) s += std::max<int32_t>(l, 0);
  return s;
}

std::string shape_flags(const Shape& s) {
  std::ostringstream os;
  os << "--cell " << cell_name(s.cell) << " --T " << s.T << " --B " << s.B << " --I " << s.I << " --H " << s.H
     << " --layers " << s.layers << (s.bidirectional ? " --bidirectional" : "")
     << (s.stacked() ? " --stack-bidirectional" : "") << " --lengths " << lengths_name(s.lengths);
  if (s.dropout_keep < 1.0) os << " --dropout " << s.dropout_keep;
  return os.str();
}

}  // namespace bench
