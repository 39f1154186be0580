// Finite-difference checks of the float64 reference's backward pass, plus a
// few semantic invariants of its forward pass (spec 1.5, 1.6, 1.9, 2.x).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "reference.h"

namespace {

using ref::Cell;
using ref::CellKind;

double uniform(std::mt19937_64& rng, double lo, double hi) {
  const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);
  return lo + (hi - lo) * u;
}

std::vector<double> random_vec(std::mt19937_64& rng, size_t n, double scale) {
  std::vector<double> v(n);
  for (double& e : v) e = uniform(rng, -scale, scale);
  return v;
}

Cell rnn(int units, bool relu = false) {
  Cell c;
  c.kind = CellKind::BasicRNN;
  c.units = units;
  c.relu = relu;
  return c;
}
Cell basic_lstm(int units, double forget_bias = 1.0, bool relu = false) {
  Cell c;
  c.kind = CellKind::BasicLSTM;
  c.units = units;
  c.forget_bias = forget_bias;
  c.relu = relu;
  return c;
}
Cell lstm(int units) {
  Cell c;
  c.kind = CellKind::LSTM;
  c.units = units;
  return c;
}
Cell gru(int units, bool relu = false) {
  Cell c;
  c.kind = CellKind::GRU;
  c.units = units;
  c.relu = relu;
  return c;
}
Cell gru_ra(int units, bool relu = false) {
  Cell c;
  c.kind = CellKind::GRUResetAfter;
  c.units = units;
  c.relu = relu;
  return c;
}

// The cell wrapped in ResidualWrapper.
Cell residual(Cell c) {
  c.residual = true;
  return c;
}
// The cell wrapped in DropoutWrapper(cell, input_keep_prob, output_keep_prob, variational_recurrent);
// residual(dropout(c)) is ResidualWrapper(DropoutWrapper(c)).
Cell dropout(Cell c, double input_keep, double output_keep, bool variational = false) {
  c.input_keep_prob = input_keep;
  c.output_keep_prob = output_keep;
  c.variational_recurrent = variational;
  return c;
}
// DropoutWrapper's state_keep_prob on top of the cell's other wrapper settings: the new state's h
// (never an LSTM's c) / keep * mask before the copy-through.
Cell state_dropout(Cell c, double state_keep) {
  c.state_keep_prob = state_keep;
  return c;
}
// LSTMCell(4) with every option: peepholes, cell_clip, num_proj, proj_clip, forget_bias; with
// weights of all_options_scale() both clips are active somewhere and inactive elsewhere.
Cell lstm_all_options() {
  Cell c = lstm(4);
  c.peepholes = true;
  c.has_cell_clip = true;
  c.cell_clip = 0.35;
  c.num_proj = 3;
  c.has_proj_clip = true;
  c.proj_clip = 0.15;
  c.forget_bias = 0.3;
  return c;
}
Cell lstm_proj(int units, int num_proj) {
  Cell c = lstm(units);
  c.num_proj = num_proj;
  return c;
}

struct Options {
  int T = 4, B = 3, D = 3;
  bool time_major = false;
  bool has_seq_len = false;
  std::vector<int> seq_len;
  bool has_initial_state = true;
  double wscale = 0.6, xscale = 1.0, sscale = 0.8;
  uint64_t seed = 1;
  uint64_t dropout_seed = 0;         // 0: derived from seed (every problem its own masks)
  bool stack_bidirectional = false;  // stack_bidirectional_dynamic_rnn(fw, bw) instead of two stacks
};

// `o` for stack_bidirectional_dynamic_rnn.
Options stacked(Options o = {}) {
  o.stack_bidirectional = true;
  return o;
}

// `o` with T steps of B rows of depth 2, every length T but row 0's, T - 1.
Options tiny(int T, int B, uint64_t seed, Options o = {}) {
  o.T = T;
  o.B = B;
  o.D = 2;
  o.seed = seed;
  o.has_seq_len = true;
  o.seq_len.assign(B, T);
  o.seq_len[0] = T - 1;
  return o;
}

// stack_bidirectional_dynamic_rnn over T = 5 steps of B = 4 rows in a layout, with lengths unless
// seq_len is empty.
Options stacked_5x4(bool time_major, std::vector<int> seq_len, uint64_t seed) {
  Options o = stacked();
  o.T = 5;
  o.B = 4;
  o.time_major = time_major;
  o.has_seq_len = !seq_len.empty();
  o.seq_len = std::move(seq_len);
  o.seed = seed;
  return o;
}

// The weight scale at which lstm_all_options() reaches both sides of its clips.
Options all_options_scale() {
  Options o;
  o.wscale = 0.9;
  return o;
}

ref::Problem make_problem(const std::vector<Cell>& fw, const std::vector<Cell>& bw, const Options& o) {
  std::mt19937_64 rng(o.seed);
  ref::Problem p;
  p.T = o.T;
  p.B = o.B;
  p.D = o.D;
  p.time_major = o.time_major;
  p.fw = fw;
  p.bw = bw;
  p.stack_bidirectional = o.stack_bidirectional;
  p.x = random_vec(rng, static_cast<size_t>(o.T) * o.B * o.D, o.xscale);
  p.has_seq_len = o.has_seq_len;
  p.seq_len = o.seq_len;
  p.has_initial_state = o.has_initial_state;
  // Both 32-bit halves of the Philox key nonzero.
  p.dropout_seed = o.dropout_seed != 0 ? o.dropout_seed : 0x9E3779B97F4A7C15ULL * (o.seed + 1);
  for (int d = 0; d < 2; ++d) {
    const std::vector<Cell>& cells = d == 0 ? fw : bw;
    const char* dir = d == 0 ? "fw" : "bw";
    auto& w = d == 0 ? p.w_fw : p.w_bw;
    for (size_t l = 0; l < cells.size(); ++l) {
      w.push_back(ref::random_params(cells[l], ref::layer_input_width(p, d, static_cast<int>(l)), rng, o.wscale));
      if (o.has_initial_state)
        for (const std::string& leaf : ref::leaves(cells[l]))
          p.init[std::string(dir) + "/" + std::to_string(l) + "/" + leaf] =
              random_vec(rng, static_cast<size_t>(o.B) * ref::state_width(cells[l], leaf.c_str()), o.sscale);
    }
  }
  return p;
}

// Random loss weights for every output and final-state entry.
ref::Upstream make_upstream(const ref::Problem& p, uint64_t seed) {
  std::mt19937_64 rng(seed * 7919 + 17);
  ref::Upstream u;
  u.dout_fw = random_vec(rng, static_cast<size_t>(p.T) * p.B * ref::output_width(p.fw.back()), 1.0);
  if (!p.bw.empty()) u.dout_bw = random_vec(rng, static_cast<size_t>(p.T) * p.B * ref::output_width(p.bw.back()), 1.0);
  for (int d = 0; d < 2; ++d) {
    const std::vector<Cell>& cells = d == 0 ? p.fw : p.bw;
    const char* dir = d == 0 ? "fw" : "bw";
    for (size_t l = 0; l < cells.size(); ++l)
      for (const std::string& leaf : ref::leaves(cells[l]))
        u.dfinal[std::string(dir) + "/" + std::to_string(l) + "/" + leaf] =
            random_vec(rng, static_cast<size_t>(p.B) * ref::state_width(cells[l], leaf.c_str()), 1.0);
  }
  return u;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) s += a[i] * b[i];
  return s;
}

double loss_of(const ref::Forward& f, const ref::Upstream& u) {
  double s = dot(f.out_fw, u.dout_fw);
  if (!u.dout_bw.empty()) s += dot(f.out_bw, u.dout_bw);
  for (const auto& [k, w] : u.dfinal) s += dot(f.final_state.at(k), w);
  return s;
}

struct Entry {
  std::string label;
  double* value;
  double analytic;
};

struct FdStats {
  int checked = 0, skipped = 0, failed = 0;
  bool clip_active = false, clip_inactive = false, relu_on = false, relu_off = false;
};

// Central differences on every differentiable input of the problem.
FdStats run_fd(ref::Problem p, const ref::Upstream& u) {
  FdStats st;
  const std::string err = ref::check(p);
  EXPECT_EQ(err, "");
  if (!err.empty()) return st;
  const ref::Gradients g = ref::backward(p, u);
  std::vector<int8_t> base_pat;
  ref::forward_with_pattern(p, &base_pat);
  for (int8_t v : base_pat) {
    st.relu_off |= v == 0;
    st.relu_on |= v == 1;
    st.clip_inactive |= v == 2;
    st.clip_active |= v == 3;
  }

  std::vector<Entry> entries;
  EXPECT_EQ(g.dx.size(), p.x.size());
  for (size_t i = 0; i < p.x.size() && i < g.dx.size(); ++i)
    entries.push_back({"x[" + std::to_string(i) + "]", &p.x[i], g.dx[i]});
  if (p.has_initial_state) {
    for (auto& [k, v] : p.init) {
      const auto it = g.dinit.find(k);
      EXPECT_TRUE(it != g.dinit.end()) << k;
      if (it == g.dinit.end()) continue;
      EXPECT_EQ(it->second.size(), v.size()) << k;
      for (size_t i = 0; i < v.size() && i < it->second.size(); ++i)
        entries.push_back({"init/" + k + "[" + std::to_string(i) + "]", &v[i], it->second[i]});
    }
  }
  for (int d = 0; d < 2; ++d) {
    auto& w = d == 0 ? p.w_fw : p.w_bw;
    const auto& dw = d == 0 ? g.dw_fw : g.dw_bw;
    EXPECT_EQ(w.size(), dw.size());
    for (size_t l = 0; l < w.size() && l < dw.size(); ++l)
      for (auto& [name, v] : w[l]) {
        const auto it = dw[l].find(name);
        EXPECT_TRUE(it != dw[l].end()) << name;
        if (it == dw[l].end()) continue;
        EXPECT_EQ(it->second.size(), v.size()) << name;
        for (size_t i = 0; i < v.size() && i < it->second.size(); ++i)
          entries.push_back(
              {std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + name + "[" + std::to_string(i) + "]",
               &v[i], it->second[i]});
      }
  }

  const double h = 1e-5;
  for (Entry& e : entries) {
    const double orig = *e.value;
    std::vector<int8_t> pat_p, pat_m;
    *e.value = orig + h;
    const double lp = loss_of(ref::forward_with_pattern(p, &pat_p), u);
    *e.value = orig - h;
    const double lm = loss_of(ref::forward_with_pattern(p, &pat_m), u);
    *e.value = orig;
    if (pat_p != base_pat || pat_m != base_pat) {  // a relu kink or clip bound within the FD step
      ++st.skipped;
      continue;
    }
    ++st.checked;
    const double fd = (lp - lm) / (2 * h);
    const double tol = 1e-7 + 1e-6 * std::fabs(fd);
    if (!(std::fabs(fd - e.analytic) <= tol)) {
      ++st.failed;
      if (st.failed <= 10)
        ADD_FAILURE() << e.label << ": analytic " << e.analytic << " vs finite difference " << fd << " (diff "
                      << e.analytic - fd << ")";
    }
  }
  EXPECT_GT(st.checked, 0);
  EXPECT_LE(st.skipped * 10, st.checked + st.skipped) << "too many entries skipped near kinks: " << st.skipped;
  return st;
}

// Runs the FD check of a stack in the configurations every cell must pass:
// batch-major with a mixed sequence_length (0, negative, > T, in range) and an
// initial state; time-major without sequence_length and without initial state;
// time-major with sequence_length; batch-major, no seq_len, initial state.
FdStats check_stack(const std::vector<Cell>& fw, const std::vector<Cell>& bw = {}, Options base = {}) {
  FdStats total;
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    Options o = base;
    o.seed = base.seed * 101 + variant;
    const bool bidi = !bw.empty();
    switch (variant) {
      case 0:
        o.time_major = false;
        o.has_seq_len = true;
        o.seq_len = bidi ? std::vector<int>{0, 4, 2} : std::vector<int>{0, 7, 2};
        break;
      case 1:
        o.time_major = true;
        o.has_seq_len = false;
        o.has_initial_state = false;
        break;
      case 2:
        o.time_major = true;
        o.has_seq_len = true;
        o.seq_len = bidi ? std::vector<int>{3, 1, 4} : std::vector<int>{3, -2, 4};
        break;
      case 3:
        o.time_major = false;
        o.has_seq_len = false;
        break;
    }
    const ref::Problem p = make_problem(fw, bw, o);
    const FdStats st = run_fd(p, make_upstream(p, o.seed));
    total.checked += st.checked;
    total.skipped += st.skipped;
    total.failed += st.failed;
    total.clip_active |= st.clip_active;
    total.clip_inactive |= st.clip_inactive;
    total.relu_on |= st.relu_on;
    total.relu_off |= st.relu_off;
  }
  return total;
}

// ------------------------------------------------------------------ cells
TEST(ReferenceFiniteDifference, BasicRNNTanh) {
  check_stack({rnn(3)});
}

TEST(ReferenceFiniteDifference, BasicRNNRelu) {
  const FdStats st = check_stack({rnn(4, true)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

TEST(ReferenceFiniteDifference, BasicLSTM) {
  check_stack({basic_lstm(3)});
}

TEST(ReferenceFiniteDifference, BasicLSTMForgetBias) {
  check_stack({basic_lstm(2, 0.37)});
}

TEST(ReferenceFiniteDifference, BasicLSTMRelu) {
  const FdStats st = check_stack({basic_lstm(3, 1.0, true)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

TEST(ReferenceFiniteDifference, LSTMPlain) {
  check_stack({lstm(4)});
}

TEST(ReferenceFiniteDifference, LSTMForgetBiasZero) {
  Cell c = lstm(3);
  c.forget_bias = 0.0;
  check_stack({c});
}

TEST(ReferenceFiniteDifference, LSTMPeepholes) {
  Cell c = lstm(3);
  c.peepholes = true;
  c.forget_bias = 0.5;
  check_stack({c});
}

TEST(ReferenceFiniteDifference, LSTMCellClip) {
  Cell c = lstm(3);
  c.has_cell_clip = true;
  c.cell_clip = 0.25;
  Options o;
  o.wscale = 1.0;
  const FdStats st = check_stack({c}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

TEST(ReferenceFiniteDifference, LSTMPeepholesCellClip) {
  Cell c = lstm(4);
  c.peepholes = true;
  c.has_cell_clip = true;
  c.cell_clip = 0.3;
  Options o;
  o.wscale = 1.0;
  const FdStats st = check_stack({c}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

TEST(ReferenceFiniteDifference, LSTMProjection) {
  Cell c = lstm(4);
  c.num_proj = 2;
  check_stack({c});
}

TEST(ReferenceFiniteDifference, LSTMProjectionClip) {
  Cell c = lstm(3);
  c.num_proj = 2;
  c.has_proj_clip = true;
  c.proj_clip = 0.12;
  const FdStats st = check_stack({c});
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

TEST(ReferenceFiniteDifference, LSTMAllOptions) {
  const Cell c = lstm_all_options();
  const Options o = all_options_scale();
  const FdStats st = check_stack({c}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

TEST(ReferenceFiniteDifference, LSTMReluAllOptions) {
  Cell c = lstm(3);
  c.relu = true;
  c.peepholes = true;
  c.has_cell_clip = true;
  c.cell_clip = 0.4;
  c.num_proj = 2;
  const FdStats st = check_stack({c});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

TEST(ReferenceFiniteDifference, GRUTanh) {
  check_stack({gru(3)});
}

TEST(ReferenceFiniteDifference, GRURelu) {
  const FdStats st = check_stack({gru(4, true)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

TEST(ReferenceFiniteDifference, GRUResetAfterTanh) {
  check_stack({gru_ra(3)});
}

TEST(ReferenceFiniteDifference, GRUResetAfterRelu) {
  const FdStats st = check_stack({gru_ra(4, true)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

// Larger weights: gates near saturation, r * (h Rh + b_r) far from zero.
TEST(ReferenceFiniteDifference, GRUResetAfterLargeWeights) {
  Options o;
  o.wscale = 1.2;
  o.D = 4;
  check_stack({gru_ra(3)}, {}, o);
}

// ------------------------------------------------------------------ stacks
TEST(ReferenceFiniteDifference, MixedMultiRNNCell) {
  Cell p = lstm(3);
  p.num_proj = 2;
  p.peepholes = true;
  p.has_cell_clip = true;
  p.cell_clip = 0.5;
  check_stack({gru(2), p, rnn(3), basic_lstm(2, 0.8)});
}

TEST(ReferenceFiniteDifference, MixedMultiRNNCellWithGRUResetAfter) {
  Cell p = lstm(3);
  p.num_proj = 2;
  check_stack({p, gru_ra(3), rnn(2)});
  const FdStats st = check_stack({gru_ra(2), gru(3), gru_ra(2, true)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

TEST(ReferenceFiniteDifference, BidirectionalSingleLayer) {
  check_stack({lstm(3)}, {gru(2)});
}

TEST(ReferenceFiniteDifference, BidirectionalMixedStacks) {
  Cell p = lstm(3);
  p.num_proj = 2;
  p.has_proj_clip = true;
  p.proj_clip = 0.3;
  check_stack({basic_lstm(2), rnn(3, true)}, {gru(3), p});
}

TEST(ReferenceFiniteDifference, BidirectionalGRUResetAfter) {
  check_stack({gru_ra(3)}, {gru(2)});
  Cell p = lstm(3);
  p.num_proj = 2;
  const FdStats st = check_stack({gru_ra(2), p}, {gru_ra(3, true), basic_lstm(2)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
}

// ------------------------------------------------------------------ ResidualWrapper
// Output = input + cell output; the identity path carries the output gradient to the input.
TEST(ReferenceFiniteDifference, ResidualSingleLayerEveryKind) {
  Cell peep_proj = lstm_proj(5, 3);
  peep_proj.peepholes = true;
  peep_proj.forget_bias = 0.4;
  for (const Cell& c : {rnn(3), basic_lstm(3), lstm(3), peep_proj, gru(3), gru_ra(3)}) {
    SCOPED_TRACE("kind " + std::to_string(static_cast<int>(c.kind)) + " units " + std::to_string(c.units));
    check_stack({residual(c)});  // D = 3 = output width
  }
}

TEST(ReferenceFiniteDifference, ResidualReluAndClips) {
  Options o;
  o.D = 4;
  FdStats st = check_stack({residual(rnn(4, true))}, {}, o);
  EXPECT_TRUE(st.relu_on && st.relu_off);
  st = check_stack({residual(gru_ra(4, true))}, {}, o);
  EXPECT_TRUE(st.relu_on && st.relu_off);
  Cell c = lstm_proj(3, 4);
  c.has_cell_clip = true;
  c.cell_clip = 0.3;
  c.has_proj_clip = true;
  c.proj_clip = 0.15;
  o.wscale = 1.0;
  st = check_stack({residual(c)}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

TEST(ReferenceFiniteDifference, ResidualStacks) {
  // Residual inner and top layers of every kind, D = 3 = every output width.
  const FdStats st =
      check_stack({residual(lstm_proj(5, 3)), residual(gru(3)), residual(gru_ra(3)), residual(rnn(3, true))});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  // A plain layer changes the width, residual layers above it; the top one a projected LSTM.
  check_stack({gru(4), residual(gru_ra(4)), residual(lstm_proj(2, 4))});
  // Residual bottom, plain top; a residual layer between plain ones.
  check_stack({residual(basic_lstm(3)), rnn(2)});
  check_stack({gru_ra(2), residual(rnn(2)), lstm(3)});
}

TEST(ReferenceFiniteDifference, ResidualBidirectional) {
  check_stack({residual(gru(3))}, {residual(lstm_proj(4, 3))});
  check_stack({residual(basic_lstm(3)), residual(gru_ra(3))}, {rnn(2), residual(gru_ra(2, true))});
}

// ------------------------------------------------------------------ sequence_length edge cases
// Finite differences of the stacks (fw, bw) for every length vector, batch- and time-major.
void check_lengths(const std::vector<std::vector<int>>& lens, const std::vector<Cell>& fw, const std::vector<Cell>& bw,
                   int first_seed, bool stack_bidirectional = false) {
  int seed = first_seed;
  for (const auto& l : lens)
    for (bool tm : {false, true}) {
      SCOPED_TRACE("seq_len " + std::to_string(l[0]) + "," + std::to_string(l[1]) + "," + std::to_string(l[2]) +
                   (tm ? " time-major" : " batch-major"));
      Options o;
      o.time_major = tm;
      o.has_seq_len = true;
      o.seq_len = l;
      o.seed = seed++;
      o.stack_bidirectional = stack_bidirectional;
      const ref::Problem p = make_problem(fw, bw, o);
      run_fd(p, make_upstream(p, o.seed));
    }
}

const std::vector<std::vector<int>> kLengthEdgeCases = {{0, 0, 0}, {-1, -5, 0}, {9, 5, 4},
                                                        {1, 1, 1}, {4, 0, -3},  {2, 3, 100}};
// Bidirectional: ReverseSequence requires 0 <= length <= T.
const std::vector<std::vector<int>> kBidirectionalLengthEdgeCases = {{0, 0, 0}, {4, 4, 4}, {1, 0, 3}, {2, 4, 1}};

TEST(ReferenceFiniteDifference, SequenceLengthEdgeCases) {
  Cell c = lstm(3);
  c.num_proj = 2;
  check_lengths(kLengthEdgeCases, {gru(2), c}, {}, 500);
}

TEST(ReferenceFiniteDifference, GRUResetAfterSequenceLengthEdgeCases) {
  check_lengths(kLengthEdgeCases, {gru_ra(3), gru_ra(2)}, {}, 700);
}

TEST(ReferenceFiniteDifference, BidirectionalSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases, {basic_lstm(2)}, {lstm(2), rnn(2)}, 900);
}

TEST(ReferenceFiniteDifference, BidirectionalGRUResetAfterSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases, {gru_ra(2)}, {gru_ra(2), rnn(2)}, 950);
}

TEST(ReferenceFiniteDifference, ResidualSequenceLengthEdgeCases) {
  check_lengths(kLengthEdgeCases, {residual(gru(3)), residual(lstm_proj(4, 3))}, {}, 1100);
  check_lengths(kLengthEdgeCases, {gru_ra(2), residual(gru_ra(2)), residual(rnn(2, true))}, {}, 1200);
}

TEST(ReferenceFiniteDifference, ResidualBidirectionalSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases, {residual(basic_lstm(3))}, {rnn(2), residual(gru(2))}, 1300);
}

TEST(ReferenceFiniteDifference, SingleStepAndSingleRow) {
  for (int T : {1, 2})
    for (int B : {1, 2}) {
      const Options o = tiny(T, B, 40 + T * 3 + B);
      const ref::Problem p = make_problem({lstm(2), gru(2)}, {rnn(2)}, o);
      run_fd(p, make_upstream(p, o.seed));
      const ref::Problem q = make_problem({gru_ra(2)}, {gru_ra(3), lstm(2)}, o);
      run_fd(q, make_upstream(q, o.seed));
      const ref::Problem d =
          make_problem({dropout(lstm(2), 0.6, 0.7), gru(2)}, {residual(dropout(rnn(2), 0.6, 0.6, true))}, o);
      run_fd(d, make_upstream(d, o.seed));
      const ref::Problem st =
          make_problem({state_dropout(lstm(2), 0.6), state_dropout(gru(2), 0.7)}, {state_dropout(rnn(2), 0.6)}, o);
      run_fd(st, make_upstream(st, o.seed));
      const ref::Problem sd = make_problem({state_dropout(dropout(gru_ra(2), 0.6, 0.7, true), 0.6)},
                                           {residual(state_dropout(dropout(basic_lstm(2), 0.6, 0.6), 0.7))}, o);
      run_fd(sd, make_upstream(sd, o.seed));
    }
}

// ------------------------------------------------------------------ DropoutWrapper
// The masks are constants of the call (functions of the seed and coordinates only), so the loss is
// as smooth in every input as without dropout and central differences apply unchanged.

// Every kind with input dropout, output dropout, both, variational or not.
TEST(ReferenceFiniteDifference, DropoutEveryKind) {
  Cell peep_proj = lstm_proj(4, 2);
  peep_proj.peepholes = true;
  peep_proj.forget_bias = 0.4;
  for (const Cell& c : {rnn(3), basic_lstm(3), lstm(3), peep_proj, gru(3), gru_ra(3)})
    for (int config = 0; config < 5; ++config) {
      SCOPED_TRACE("kind " + std::to_string(static_cast<int>(c.kind)) + " units " + std::to_string(c.units) +
                   " config " + std::to_string(config));
      switch (config) {
        case 0: check_stack({dropout(c, 0.6, 1.0)}); break;
        case 1: check_stack({dropout(c, 1.0, 0.7)}); break;
        case 2: check_stack({dropout(c, 0.6, 0.7)}); break;
        case 3: check_stack({dropout(c, 0.7, 0.6, true)}); break;
        case 4: check_stack({dropout(c, 1.0, 0.6, true)}); break;
      }
    }
}

TEST(ReferenceFiniteDifference, DropoutReluAndClips) {
  FdStats st = check_stack({dropout(rnn(4, true), 0.6, 0.7)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  st = check_stack({dropout(gru_ra(4, true), 0.7, 0.6, true)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  const Cell c = lstm_all_options();
  const Options o = all_options_scale();
  st = check_stack({dropout(c, 0.6, 0.7)}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

// Dropout, no-dropout and residual+dropout layers mixed in one stack.
TEST(ReferenceFiniteDifference, DropoutStacks) {
  // D = 3 = every output width: residual layers anywhere.
  FdStats st = check_stack({dropout(gru(3), 0.6, 0.7), residual(dropout(lstm_proj(4, 3), 0.7, 0.6)), rnn(3),
                            residual(dropout(gru_ra(3), 0.6, 1.0, true)), residual(dropout(rnn(3, true), 1.0, 0.7))});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  // A plain layer changes the width; input dropout on the layer above reads the plain layer's output.
  check_stack({basic_lstm(4), dropout(gru(2), 0.6, 1.0), residual(dropout(rnn(2), 0.7, 0.7, true))});
  // Dropout only on the bottom layer's input and the top layer's output.
  check_stack({dropout(gru_ra(3), 0.6, 1.0), lstm(2), dropout(basic_lstm(3), 1.0, 0.6)});
}

TEST(ReferenceFiniteDifference, DropoutBidirectional) {
  check_stack({dropout(lstm(3), 0.6, 0.7)}, {dropout(gru(2), 0.7, 0.6)});
  check_stack({dropout(gru_ra(3), 0.6, 0.7, true), residual(dropout(rnn(3), 0.7, 0.6))},
              {basic_lstm(2), dropout(lstm_proj(3, 2), 0.6, 0.6)});
  // Dropout on one direction only.
  check_stack({gru(2)}, {residual(dropout(gru_ra(3), 0.6, 0.7))});
}

TEST(ReferenceFiniteDifference, DropoutSeveralSeeds) {
  for (uint64_t seed : {1ULL, 2ULL, 0xFFFFFFFFULL, 0x100000000ULL, 0xDEADBEEFCAFEF00DULL}) {
    SCOPED_TRACE("dropout seed " + std::to_string(seed));
    Options o;
    o.dropout_seed = seed;
    o.seed = 3 + seed % 97;
    check_stack({dropout(lstm(3), 0.6, 0.7), residual(dropout(gru(3), 0.7, 0.6, true))}, {dropout(rnn(2), 0.6, 0.7)},
                o);
  }
}

TEST(ReferenceFiniteDifference, DropoutSequenceLengthEdgeCases) {
  check_lengths(kLengthEdgeCases, {dropout(gru(3), 0.6, 0.7), residual(dropout(lstm_proj(4, 3), 0.7, 0.6, true))}, {},
                1400);
  check_lengths(kLengthEdgeCases, {dropout(gru_ra(2), 0.6, 1.0), residual(dropout(rnn(2, true), 1.0, 0.6))}, {}, 1500);
}

TEST(ReferenceFiniteDifference, DropoutBidirectionalSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases, {dropout(basic_lstm(3), 0.6, 0.7)},
                {dropout(rnn(2), 0.7, 0.6), residual(dropout(gru(2), 0.6, 0.7, true))}, 1600);
  check_lengths(kBidirectionalLengthEdgeCases, {residual(dropout(gru_ra(3), 0.6, 0.7, true))},
                {dropout(lstm(2), 0.6, 0.6)}, 1700);
}

// ------------------------------------------------------------------ DropoutWrapper state_keep_prob
// The state mask multiplies the new state's h (not an LSTM's c) before the copy-through; the
// gradient from the next step (or the final state) into the cell's new h is multiplied by
// mask / keep at the rows that ran the step.

// Every kind: state dropout alone, variational or not, with input and output dropout, with the
// ResidualWrapper.
TEST(ReferenceFiniteDifference, DropoutStateEveryKind) {
  Cell peep_proj = lstm_proj(4, 2);
  peep_proj.peepholes = true;
  peep_proj.forget_bias = 0.4;
  Cell peep_proj3 = lstm_proj(5, 3);  // output width 3 = D: residual
  peep_proj3.peepholes = true;
  for (const Cell& c : {rnn(3), basic_lstm(3), lstm(3), peep_proj, peep_proj3, gru(3), gru_ra(3)})
    for (int config = 0; config < 6; ++config) {
      SCOPED_TRACE("kind " + std::to_string(static_cast<int>(c.kind)) + " units " + std::to_string(c.units) + " proj " +
                   std::to_string(c.num_proj) + " config " + std::to_string(config));
      const bool res_ok = ref::output_width(c) == 3;
      switch (config) {
        case 0: check_stack({state_dropout(c, 0.6)}); break;
        case 1: check_stack({state_dropout(dropout(c, 1.0, 1.0, true), 0.6)}); break;
        case 2: check_stack({state_dropout(dropout(c, 0.6, 0.7), 0.7)}); break;
        case 3: check_stack({state_dropout(dropout(c, 0.7, 0.6, true), 0.6)}); break;
        case 4:
          if (res_ok) check_stack({residual(state_dropout(dropout(c, 1.0, 0.7), 0.6))});
          break;
        case 5:
          if (res_ok) check_stack({residual(state_dropout(dropout(c, 0.6, 1.0, true), 0.7))});
          break;
      }
    }
}

TEST(ReferenceFiniteDifference, DropoutStateReluAndClips) {
  FdStats st = check_stack({state_dropout(rnn(4, true), 0.6)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  st = check_stack({state_dropout(dropout(gru(4, true), 0.7, 0.7), 0.6)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  st = check_stack({state_dropout(dropout(gru_ra(4, true), 1.0, 0.6, true), 0.7)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  st = check_stack({state_dropout(basic_lstm(3, 1.0, true), 0.6)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  const Cell c = lstm_all_options();
  Options o = all_options_scale();
  st = check_stack({state_dropout(dropout(c, 0.6, 0.7), 0.6)}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
  st = check_stack({state_dropout(dropout(c, 1.0, 1.0, true), 0.7)}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
  Cell cc = lstm(3);  // cell clip without a projection: the clipped c is never dropped, h = m is
  cc.has_cell_clip = true;
  cc.cell_clip = 0.25;
  o.wscale = 1.0;
  st = check_stack({state_dropout(cc, 0.6)}, {}, o);
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
}

// State dropout, other dropout, residual and plain layers mixed in one stack.
TEST(ReferenceFiniteDifference, DropoutStateStacks) {
  FdStats st =
      check_stack({state_dropout(gru(3), 0.6), residual(state_dropout(dropout(lstm_proj(4, 3), 0.7, 0.6), 0.7)), rnn(3),
                   residual(state_dropout(dropout(gru_ra(3), 0.6, 1.0, true), 0.6)),
                   state_dropout(dropout(rnn(3, true), 1.0, 0.7), 0.7)});
  EXPECT_TRUE(st.relu_on && st.relu_off);
  check_stack(
      {basic_lstm(4), state_dropout(dropout(gru(2), 0.6, 1.0), 0.7), residual(dropout(rnn(2), 0.7, 0.7, true))});
  check_stack({state_dropout(lstm(3), 0.6), state_dropout(basic_lstm(2), 0.7), state_dropout(gru_ra(2), 0.6)});
}

TEST(ReferenceFiniteDifference, DropoutStateBidirectional) {
  check_stack({state_dropout(lstm(3), 0.6)}, {state_dropout(gru(2), 0.7)});
  check_stack({state_dropout(dropout(gru_ra(3), 0.6, 0.7, true), 0.7), residual(dropout(rnn(3), 0.7, 0.6))},
              {basic_lstm(2), state_dropout(dropout(lstm_proj(3, 2), 0.6, 0.6), 0.6)});
  // State dropout on one direction only; the same cell on both.
  check_stack({gru(2)}, {residual(state_dropout(dropout(gru_ra(3), 0.6, 0.7), 0.6))});
  check_stack({state_dropout(rnn(2), 0.6)}, {state_dropout(rnn(2), 0.6)});
}

TEST(ReferenceFiniteDifference, DropoutStateSeveralSeeds) {
  for (uint64_t seed : {1ULL, 0xFFFFFFFFULL, 0x100000000ULL, 0xDEADBEEFCAFEF00DULL}) {
    SCOPED_TRACE("dropout seed " + std::to_string(seed));
    Options o;
    o.dropout_seed = seed;
    o.seed = 5 + seed % 89;
    check_stack({state_dropout(dropout(lstm(3), 0.6, 0.7), 0.6), residual(state_dropout(gru(3), 0.7))},
                {state_dropout(dropout(rnn(2), 0.6, 0.7, true), 0.6)}, o);
  }
}

TEST(ReferenceFiniteDifference, DropoutStateSequenceLengthEdgeCases) {
  check_lengths(kLengthEdgeCases, {state_dropout(gru(3), 0.6), residual(state_dropout(lstm_proj(4, 3), 0.6))}, {},
                1800);
  check_lengths(
      kLengthEdgeCases,
      {state_dropout(dropout(gru_ra(2), 0.6, 0.7, true), 0.6), state_dropout(dropout(rnn(2, true), 1.0, 0.6), 0.7)}, {},
      1900);
  check_lengths(kLengthEdgeCases, {state_dropout(basic_lstm(2), 0.6), state_dropout(lstm(2), 0.7)}, {}, 2000);
}

TEST(ReferenceFiniteDifference, DropoutStateBidirectionalSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases, {state_dropout(basic_lstm(3), 0.6)},
                {state_dropout(rnn(2), 0.7), residual(state_dropout(dropout(gru(2), 0.6, 0.7, true), 0.6))}, 2100);
  check_lengths(kBidirectionalLengthEdgeCases, {residual(state_dropout(dropout(gru_ra(3), 0.6, 0.7), 0.6))},
                {state_dropout(dropout(lstm_proj(3, 2), 0.6, 0.6, true), 0.7)}, 2200);
}

// ------------------------------------------------------------------ stack_bidirectional_dynamic_rnn
// Layer l is bidirectional_dynamic_rnn(fw[l], bw[l]) over layer l-1's concat([out_fw, out_bw], axis=2);
// check_stack's variants: lengths {0, 4, 2} and {3, 1, 4} (0, T and mixed), none, batch- and
// time-major, with and without an initial state.

TEST(ReferenceFiniteDifference, StackBidirectionalTwoLayers) {
  check_stack({lstm(3)}, {gru(2)}, stacked());  // one layer
  // Layer 1 reads width 2 + 3 = 5; its two directions have different widths again.
  check_stack({lstm_proj(4, 2), gru(3)}, {gru(3), basic_lstm(2)}, stacked());
  check_stack({gru_ra(2), rnn(4)}, {lstm(3), gru_ra(2)}, stacked());
}

TEST(ReferenceFiniteDifference, StackBidirectionalThreeLayersMixedCells) {
  Cell peep_clip = lstm_all_options();  // above the bottom layer, with other clips
  peep_clip.cell_clip = 0.3;
  peep_clip.proj_clip = 0.2;
  peep_clip.forget_bias = 0.5;
  FdStats st = check_stack({lstm_all_options(), gru_ra(2), rnn(3, true)},
                           {basic_lstm(2), gru(4, true), lstm_proj(3, 2)}, stacked(all_options_scale()));
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
  EXPECT_TRUE(st.relu_on && st.relu_off);
  st = check_stack({rnn(3, true), peep_clip, gru_ra(2, true)}, {gru(2), basic_lstm(3, 0.7), peep_clip},
                   stacked(all_options_scale()));
  EXPECT_TRUE(st.clip_active && st.clip_inactive);
  EXPECT_TRUE(st.relu_on && st.relu_off);
  check_stack({gru(2), lstm_proj(3, 1), basic_lstm(2, 1.0, true)}, {gru_ra(3), rnn(2), gru(3)}, stacked());
}

// ResidualWrapper on layers >= 1 whose output width is the concat width; on layer 0 with D = 3.
TEST(ReferenceFiniteDifference, StackBidirectionalResidual) {
  // 2 + 2 = 4 into layer 1, 4 + 4 = 8 into layer 2.
  check_stack({gru(2), residual(lstm_proj(3, 4)), basic_lstm(2)}, {rnn(2), residual(gru_ra(4)), gru(2)}, stacked());
  // 1 + 3 = 4 into layer 1.
  const FdStats st =
      check_stack({lstm_proj(3, 1), residual(basic_lstm(4))}, {gru(3), residual(rnn(4, true))}, stacked());
  EXPECT_TRUE(st.relu_on && st.relu_off);
  // Residual bottom layer (D = 3), then 3 + 3 = 6 into a residual layer 1.
  check_stack({residual(gru(3)), residual(rnn(6))}, {residual(lstm_proj(4, 3)), residual(gru_ra(6))}, stacked());
}

// DropoutWrapper (input, output, state; variational or not) on stacked layers: the masks of layer l.
TEST(ReferenceFiniteDifference, StackBidirectionalDropout) {
  check_stack({dropout(gru(2), 0.6, 0.7), state_dropout(dropout(lstm_proj(3, 4), 0.7, 0.6, true), 0.6)},
              {state_dropout(rnn(2), 0.7), residual(state_dropout(dropout(gru_ra(4), 0.6, 0.7), 0.6))}, stacked());
  // Three layers, dropout on some layers and sites only.
  const FdStats st = check_stack(
      {state_dropout(dropout(basic_lstm(3), 0.6, 1.0, true), 0.7), lstm(2), dropout(rnn(3, true), 1.0, 0.6)},
      {gru(2), state_dropout(dropout(gru_ra(3), 0.7, 0.7), 0.6), state_dropout(lstm_proj(4, 2), 0.6)}, stacked());
  EXPECT_TRUE(st.relu_on && st.relu_off);
  for (uint64_t seed : {1ULL, 0xFFFFFFFFULL, 0xDEADBEEFCAFEF00DULL}) {
    SCOPED_TRACE("dropout seed " + std::to_string(seed));
    Options o = stacked();
    o.dropout_seed = seed;
    o.seed = 11 + seed % 83;
    check_stack({dropout(lstm(3), 0.6, 0.7), state_dropout(dropout(gru(2), 0.7, 0.6, true), 0.6)},
                {state_dropout(dropout(rnn(2), 0.6, 0.7, true), 0.7), dropout(basic_lstm(3), 0.6, 0.6)}, o);
  }
}

TEST(ReferenceFiniteDifference, StackBidirectionalSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases, {lstm_proj(3, 2), gru(2)}, {gru_ra(2), rnn(3, true)}, 2300, true);
  // 2 + 2 = 4 into a residual layer 1, 4 + 2 = 6 into layer 2.
  check_lengths(kBidirectionalLengthEdgeCases, {basic_lstm(2), residual(gru(4)), rnn(2)}, {rnn(2), lstm(2), gru_ra(3)},
                2400, true);
}

TEST(ReferenceFiniteDifference, StackBidirectionalDropoutSequenceLengthEdgeCases) {
  check_lengths(kBidirectionalLengthEdgeCases,
                {state_dropout(dropout(gru(3), 0.6, 0.7), 0.6), dropout(lstm(2), 0.7, 0.6, true)},
                {dropout(basic_lstm(2), 0.6, 1.0, true), state_dropout(rnn(2, true), 0.7)}, 2500, true);
  check_lengths(kBidirectionalLengthEdgeCases,
                {dropout(rnn(2), 1.0, 0.7), residual(state_dropout(dropout(gru_ra(4), 0.6, 0.6, true), 0.7))},
                {lstm_proj(3, 2), residual(dropout(lstm_proj(3, 4), 0.7, 1.0))}, 2600, true);
}

TEST(ReferenceFiniteDifference, StackBidirectionalSingleStepAndSingleRow) {
  for (int T : {1, 2})
    for (int B : {1, 2}) {
      const Options o = tiny(T, B, 60 + T * 3 + B, stacked());
      const ref::Problem p = make_problem({lstm(2), gru(2)}, {rnn(2), gru_ra(3)}, o);
      run_fd(p, make_upstream(p, o.seed));
      const ref::Problem d = make_problem({state_dropout(dropout(lstm(2), 0.6, 0.7), 0.6), gru(2)},
                                          {residual(dropout(rnn(2), 0.6, 0.6, true)), residual(gru(4))}, o);
      run_fd(d, make_upstream(d, o.seed));
    }
}

// ------------------------------------------------------------------ forward semantics
// `top`: the upper layer of an {lstm, top} stack.
void check_masked_outputs_and_final_state(const Cell& top) {
  Options o;
  o.T = 5;
  o.B = 4;
  o.has_seq_len = true;
  o.seq_len = {0, 2, 5, -1};
  ref::Problem p = make_problem({lstm(3), top}, {}, o);
  const ref::Forward f = ref::forward(p);
  const int O = ref::output_width(top);
  for (int b = 0; b < o.B; ++b)
    for (int t = 0; t < o.T; ++t)
      for (int q = 0; q < O; ++q) {
        const double v = f.out_fw[(static_cast<size_t>(b) * o.T + t) * O + q];
        if (t >= std::max(0, o.seq_len[b])) {
          EXPECT_EQ(v, 0.0) << b << " " << t;
        }
      }
  // Rows of length <= 0 keep the initial state bit-exactly.
  for (const auto& [k, v] : f.final_state)
    for (int b : {0, 3}) {
      const int w = static_cast<int>(v.size()) / o.B;
      for (int q = 0; q < w; ++q)
        EXPECT_EQ(v[static_cast<size_t>(b) * w + q], p.init.at(k)[static_cast<size_t>(b) * w + q]);
    }
  // Row 1's final state equals the state after 2 steps of an unmasked run on T = 2.
  ref::Problem p2 = p;
  p2.T = 2;
  p2.has_seq_len = false;
  p2.seq_len.clear();
  p2.x.clear();
  for (int b = 0; b < o.B; ++b)
    for (int t = 0; t < 2; ++t)
      for (int d = 0; d < o.D; ++d) p2.x.push_back(p.x[(static_cast<size_t>(b) * o.T + t) * o.D + d]);
  const ref::Forward f2 = ref::forward(p2);
  for (const auto& [k, v] : f.final_state) {
    const int w = static_cast<int>(v.size()) / o.B;
    for (int q = 0; q < w; ++q)
      EXPECT_EQ(v[static_cast<size_t>(w) + q], f2.final_state.at(k)[static_cast<size_t>(w) + q]) << k;
  }
  // Lengths > T act as T (unidirectional).
  ref::Problem p3 = p;
  p3.seq_len = {7, 7, 7, 7};
  ref::Problem p4 = p;
  p4.has_seq_len = false;
  p4.seq_len.clear();
  const ref::Forward f3 = ref::forward(p3), f4 = ref::forward(p4);
  EXPECT_EQ(f3.out_fw, f4.out_fw);
  EXPECT_EQ(f3.final_state, f4.final_state);
}

TEST(ReferenceSemantics, MaskedOutputsAreZeroAndFinalStateIsStateAtLength) {
  check_masked_outputs_and_final_state(gru(2));
}

TEST(ReferenceSemantics, MaskedOutputsAreZeroAndFinalStateIsStateAtLengthGRUResetAfter) {
  check_masked_outputs_and_final_state(gru_ra(2));
}

// A residual top layer's input (the lstm's output) is nonzero past the lengths: still masked to 0.
TEST(ReferenceSemantics, MaskedOutputsAreZeroAndFinalStateIsStateAtLengthResidual) {
  check_masked_outputs_and_final_state(residual(gru(3)));
  check_masked_outputs_and_final_state(residual(lstm_proj(4, 3)));
}

// ResidualWrapper: out = x + (the bare cell's out) at valid steps, 0 past the length; the states
// are the bare cell's. In a stack, the layer above sees x + h.
TEST(ReferenceSemantics, ResidualOutputIsInputPlusCellOutput) {
  for (bool tm : {false, true}) {
    Options o;
    o.T = 5;
    o.B = 4;
    o.time_major = tm;
    o.has_seq_len = true;
    o.seq_len = {0, 2, 5, 7};
    for (const Cell& c : {rnn(3), basic_lstm(3), lstm_proj(4, 3), gru(3), gru_ra(3)}) {
      const ref::Problem res = make_problem({residual(c)}, {}, o);
      ref::Problem plain = res;
      plain.fw[0].residual = false;
      const ref::Forward fr = ref::forward(res), fp = ref::forward(plain);
      EXPECT_EQ(fr.final_state, fp.final_state);
      ASSERT_EQ(fr.out_fw.size(), res.x.size());
      for (int t = 0; t < o.T; ++t)
        for (int b = 0; b < o.B; ++b)
          for (int q = 0; q < o.D; ++q) {
            const size_t i =
                tm ? (static_cast<size_t>(t) * o.B + b) * o.D + q : (static_cast<size_t>(b) * o.T + t) * o.D + q;
            const double want = t < o.seq_len[b] ? res.x[i] + fp.out_fw[i] : 0.0;
            EXPECT_EQ(fr.out_fw[i], want) << t << " " << b << " " << q;
          }
      // Stacked: a plain top layer over the residual one equals that top layer fed x + h.
      ref::Problem stacked = make_problem({residual(c), gru(2)}, {}, o);
      stacked.w_fw[0] = res.w_fw[0];
      stacked.x = res.x;
      stacked.init["fw/0/h"] = res.init.at("fw/0/h");
      if (res.init.count("fw/0/c")) stacked.init["fw/0/c"] = res.init.at("fw/0/c");
      ref::Problem top = make_problem({gru(2)}, {}, o);
      top.w_fw[0] = stacked.w_fw[1];
      top.init = {{"fw/0/h", stacked.init.at("fw/1/h")}};
      ref::Problem unmasked = res;  // x + h at every step up to max length, no zeros
      unmasked.has_seq_len = false;
      unmasked.seq_len.clear();
      top.x = ref::forward(unmasked).out_fw;
      const ref::Forward fs = ref::forward(stacked), ft = ref::forward(top);
      // Equal up to the steps run: past the longest length (7 > T) nothing differs.
      EXPECT_EQ(fs.out_fw, ft.out_fw);
      EXPECT_EQ(fs.final_state.at("fw/1/h"), ft.final_state.at("fw/0/h"));
    }
  }
}

// `bw`: the backward cell of a bidirectional {lstm} / {bw} problem.
void check_empty_time_and_batch(const Cell& bw) {
  Options o;
  o.T = 0;
  ref::Problem p = make_problem({lstm(3)}, {bw}, o);
  const ref::Forward f = ref::forward(p);
  EXPECT_TRUE(f.out_fw.empty());
  EXPECT_TRUE(f.out_bw.empty());
  EXPECT_EQ(f.final_state, p.init);
  ref::Upstream u = make_upstream(p, 3);
  const ref::Gradients g = ref::backward(p, u);
  EXPECT_TRUE(g.dx.empty());
  EXPECT_EQ(g.dinit, u.dfinal);
  for (const auto& [n, v] : g.dw_fw[0])
    for (double e : v) EXPECT_EQ(e, 0.0) << n;

  Options ob;
  ob.B = 0;
  ob.has_seq_len = true;
  ref::Problem pb = make_problem({lstm(3)}, {bw}, ob);
  const ref::Forward fb = ref::forward(pb);
  EXPECT_TRUE(fb.out_fw.empty());
  for (const auto& [k, v] : fb.final_state) EXPECT_TRUE(v.empty()) << k;
  const ref::Gradients gb = ref::backward(pb, ref::Upstream{});
  EXPECT_TRUE(gb.dx.empty());
}

TEST(ReferenceSemantics, EmptyTimeAndBatch) {
  check_empty_time_and_batch(gru(2));
}

TEST(ReferenceSemantics, EmptyTimeAndBatchGRUResetAfter) {
  check_empty_time_and_batch(gru_ra(2));
}

TEST(ReferenceSemantics, LSTMWithoutOptionsEqualsBasicLSTM) {
  Options o;
  o.has_seq_len = true;
  o.seq_len = {1, 4, 3};
  ref::Problem a = make_problem({basic_lstm(3, 0.6)}, {}, o);
  ref::Problem b = a;
  b.fw[0].kind = CellKind::LSTM;
  EXPECT_EQ(ref::forward(a).out_fw, ref::forward(b).out_fw);
}

TEST(ReferenceSemantics, CellClipZeroGivesZeroOutputs) {
  Cell c = lstm(3);
  c.has_cell_clip = true;
  c.cell_clip = 0.0;
  ref::Problem p = make_problem({c}, {}, Options{});
  for (double v : ref::forward(p).out_fw) EXPECT_EQ(v, 0.0);
}

// spec 1.9: identical cells and weights, the same input at every step:
// out_fw[t] == out_bw[L-1-t] exactly and equal final states.
// `top`: the upper layer of both {lstm, top} stacks.
void check_bidirectional_mirrors_forward(const Cell& top) {
  for (bool tm : {false, true}) {
    Options o;
    o.T = 5;
    o.time_major = tm;
    o.has_seq_len = true;
    o.seq_len = {5, 3, 0};
    o.has_initial_state = false;
    ref::Problem p = make_problem({lstm(3), top}, {lstm(3), top}, o);
    p.w_bw = p.w_fw;
    for (int t = 0; t < o.T; ++t)
      for (int b = 0; b < o.B; ++b)
        for (int d = 0; d < o.D; ++d) {
          const size_t i =
              tm ? (static_cast<size_t>(t) * o.B + b) * o.D + d : (static_cast<size_t>(b) * o.T + t) * o.D + d;
          p.x[i] = 0.1 * (b + 1) - 0.2 * d;
        }
    const ref::Forward f = ref::forward(p);
    const int O = 2;
    for (int b = 0; b < o.B; ++b)
      for (int t = 0; t < o.seq_len[b]; ++t) {
        const int tb = o.seq_len[b] - 1 - t;
        for (int q = 0; q < O; ++q) {
          auto at = [&](int tt) {
            return tm ? (static_cast<size_t>(tt) * o.B + b) * O + q : (static_cast<size_t>(b) * o.T + tt) * O + q;
          };
          EXPECT_EQ(f.out_fw[at(t)], f.out_bw[at(tb)]);
        }
      }
    for (const auto& [k, v] : f.final_state)
      if (k.rfind("fw/", 0) == 0) {
        EXPECT_EQ(v, f.final_state.at("bw/" + k.substr(3))) << k;
      }
  }
}

TEST(ReferenceSemantics, BidirectionalMirrorsForward) {
  check_bidirectional_mirrors_forward(gru(2));
}

TEST(ReferenceSemantics, BidirectionalMirrorsForwardGRUResetAfter) {
  check_bidirectional_mirrors_forward(gru_ra(2));
}

TEST(ReferenceSemantics, CheckRejectsBadProblems) {
  Options o;
  o.has_seq_len = true;
  o.seq_len = {1, -1, 2};
  EXPECT_EQ(ref::check(make_problem({lstm(2)}, {}, o)), "");  // unidirectional accepts negative lengths
  EXPECT_NE(ref::check(make_problem({lstm(2)}, {lstm(2)}, o)), "");
  o.seq_len = {1, 5, 2};
  EXPECT_EQ(ref::check(make_problem({lstm(2)}, {}, o)), "");
  EXPECT_NE(ref::check(make_problem({lstm(2)}, {lstm(2)}, o)), "");
  EXPECT_THROW(ref::forward(make_problem({lstm(2)}, {lstm(2)}, o)), std::invalid_argument);
  o.seq_len = {1, 2};
  EXPECT_NE(ref::check(make_problem({lstm(2)}, {}, o)), "");
  ref::Problem p = make_problem({lstm(2)}, {}, Options{});
  p.x.pop_back();
  EXPECT_NE(ref::check(p), "");
  p = make_problem({lstm(2)}, {}, Options{});
  p.w_fw[0].erase("bias");
  EXPECT_NE(ref::check(p), "");
  p = make_problem({lstm(2)}, {}, Options{});
  p.init.erase("fw/0/c");
  EXPECT_NE(ref::check(p), "");
  p = make_problem({gru_ra(2)}, {}, Options{});
  EXPECT_EQ(ref::check(p), "");
  p.w_fw[0].erase("recurrent_kernel");
  EXPECT_NE(ref::check(p), "");
  p = make_problem({gru_ra(2)}, {}, Options{});
  p.w_fw[0].at("bias").resize(3 * 2);  // one row of [2, 3H]
  EXPECT_NE(ref::check(p), "");
  p = make_problem({gru_ra(2)}, {}, Options{});
  p.fw[0].num_proj = 1;
  EXPECT_NE(ref::check(p), "");
  // ResidualWrapper: input width must equal output width (D = 3).
  EXPECT_EQ(ref::check(make_problem({residual(gru(3)), residual(lstm_proj(5, 3))}, {}, Options{})), "");
  p = make_problem({residual(gru(2))}, {}, Options{});
  EXPECT_NE(ref::check(p), "");
  EXPECT_NE(ref::check(p).find("residual"), std::string::npos) << ref::check(p);
  EXPECT_THROW(ref::forward(p), std::invalid_argument);
  EXPECT_NE(ref::check(make_problem({gru(3), residual(lstm_proj(3, 2))}, {}, Options{})), "");
  EXPECT_NE(ref::check(make_problem({lstm(3)}, {gru(2), residual(rnn(3))}, Options{})), "");
  p = make_problem({residual(lstm(4))}, {}, Options{});  // H = 4 != D = 3 (no projection)
  EXPECT_NE(ref::check(p), "");
}

// ------------------------------------------------------------------ DropoutWrapper semantics
size_t user_index(bool tm, int T, int B, int W, int t, int b, int q) {
  return tm ? (static_cast<size_t>(t) * B + b) * W + q : (static_cast<size_t>(b) * T + t) * W + q;
}

// `p` with every DropoutWrapper removed (ResidualWrappers kept unless `keep_residual` is false).
ref::Problem without_dropout(ref::Problem p, bool keep_residual = true) {
  for (std::vector<Cell>* stack : {&p.fw, &p.bw})
    for (Cell& c : *stack) {
      c = state_dropout(dropout(c, 1.0, 1.0, false), 1.0);
      if (!keep_residual) c.residual = false;
    }
  return p;
}

void expect_same_run(const ref::Problem& a, const ref::Problem& b, const ref::Upstream& u) {
  const ref::Forward fa = ref::forward(a), fb = ref::forward(b);
  EXPECT_EQ(fa.out_fw, fb.out_fw);
  EXPECT_EQ(fa.out_bw, fb.out_bw);
  EXPECT_EQ(fa.final_state, fb.final_state);
  const ref::Gradients ga = ref::backward(a, u), gb = ref::backward(b, u);
  EXPECT_EQ(ga.dx, gb.dx);
  EXPECT_EQ(ga.dinit, gb.dinit);
  EXPECT_EQ(ga.dw_fw, gb.dw_fw);
  EXPECT_EQ(ga.dw_bw, gb.dw_bw);
}

// Keep probabilities of exactly 1 are no dropout at all: bit for bit the unwrapped problem's results,
// variational or not, whatever the seed.
TEST(ReferenceSemantics, DropoutKeepOneIsNoDropout) {
  for (bool tm : {false, true}) {
    Options o;
    o.time_major = tm;
    o.has_seq_len = true;
    o.seq_len = {3, 0, 4};
    o.dropout_seed = 0xABCDEF0123456789ULL;
    const ref::Problem p =
        make_problem({dropout(lstm(3), 1.0, 1.0, true), residual(dropout(gru(3), 1.0, 1.0)), dropout(rnn(2), 1.0, 1.0)},
                     {dropout(gru_ra(3), 1.0, 1.0, true)}, o);
    ref::Problem plain = without_dropout(p);
    plain.dropout_seed = 0;
    expect_same_run(p, plain, make_upstream(p, 5));
  }
}

// Dropout changes the results, the same seed gives the same results, another seed other ones.
TEST(ReferenceSemantics, DropoutChangesResultsAndFollowsTheSeed) {
  Options o;
  o.has_seq_len = true;
  o.seq_len = {3, 1, 4};
  for (const Cell& c : {dropout(gru(3), 0.7, 1.0), dropout(gru(3), 1.0, 0.7), dropout(gru(3), 0.7, 0.7, true)}) {
    const ref::Problem p = make_problem({lstm(3), c}, {residual(c)}, o);
    const ref::Upstream u = make_upstream(p, 9);
    const ref::Problem plain = without_dropout(p);
    const ref::Forward f = ref::forward(p), fp = ref::forward(plain);
    EXPECT_NE(f.out_fw, fp.out_fw);
    EXPECT_NE(f.out_bw, fp.out_bw);
    EXPECT_NE(ref::backward(p, u).dx, ref::backward(plain, u).dx);
    expect_same_run(p, p, u);  // deterministic
    ref::Problem other = p;
    other.dropout_seed ^= uint64_t(1) << 40;  // the key's high half
    EXPECT_NE(ref::forward(other).out_fw, f.out_fw);
    EXPECT_NE(ref::forward(other).out_bw, f.out_bw);
  }
}

// A single layer with output dropout only: its state is the bare cell's, its output the bare cell's
// output / keep * mask (+ x if residual) at valid positions, 0 past the length. The backward
// direction's mask at time position tau of row b is that of step L_b - 1 - tau (the loop iteration,
// not the time). Variational: one mask column for every row and step.
TEST(ReferenceSemantics, DropoutOutputIsTheScaledMaskedCellOutput) {
  const double keep = 0.625;  // exact in float32, as TF rounds it
  for (bool tm : {false, true})
    for (bool lens : {false, true})
      for (bool variational : {false, true})
        for (bool res : {false, true}) {
          SCOPED_TRACE(std::string(tm ? "time-major" : "batch-major") + (lens ? " lengths" : "") +
                       (variational ? " variational" : "") + (res ? " residual" : ""));
          Options o;
          o.T = 5;
          o.B = 4;
          o.time_major = tm;
          o.has_seq_len = lens;
          o.seq_len = {5, 0, 2, 4};
          o.seed = 31;
          Cell fw = dropout(lstm_proj(4, 3), 1.0, keep, variational), bw = dropout(gru(3), 1.0, keep, variational);
          fw.residual = bw.residual = res;
          const ref::Problem p = make_problem({fw}, {bw}, o);
          const ref::Problem bare = without_dropout(p, false);
          const ref::Forward f = ref::forward(p), fb = ref::forward(bare);
          EXPECT_EQ(f.final_state, fb.final_state);  // the state is never dropped
          if (lens)
            for (const auto& [k, v] : f.final_state)  // length 0: the initial state
              for (int q = 0; q < static_cast<int>(v.size()) / o.B; ++q)
                EXPECT_EQ(v[static_cast<size_t>(v.size() / o.B) + q], p.init.at(k)[v.size() / o.B + q]) << k;
          const int O = 3;
          int dropped = 0;
          for (int dir = 0; dir < 2; ++dir) {
            const std::vector<double>& out = dir == 0 ? f.out_fw : f.out_bw;
            const std::vector<double>& cell_out = dir == 0 ? fb.out_fw : fb.out_bw;
            std::vector<std::vector<int>> column_kept(O);  // variational: observed masks per column
            for (int b = 0; b < o.B; ++b) {
              const int L = lens ? o.seq_len[b] : o.T;
              for (int t = 0; t < o.T; ++t)
                for (int q = 0; q < O; ++q) {
                  const size_t i = user_index(tm, o.T, o.B, O, t, b, q);
                  if (t >= L) {
                    EXPECT_EQ(out[i], 0.0);
                    continue;
                  }
                  const int step = dir == 0 ? t : L - 1 - t;
                  const double m = ref::dropout_mask(p.dropout_seed, dir, 0, 1, variational, step, b, q, keep);
                  const double want = (res ? p.x[i] : 0.0) + cell_out[i] / keep * m;
                  EXPECT_EQ(out[i], want) << "dir " << dir << " t " << t << " b " << b << " q " << q;
                  dropped += m == 0.0;
                  // Observed from the outputs alone: dropped iff out equals the residual part.
                  column_kept[q].push_back(out[i] != (res ? p.x[i] : 0.0));
                }
            }
            if (variational)
              for (int q = 0; q < O; ++q)
                for (int kept : column_kept[q]) EXPECT_EQ(kept, column_kept[q][0]) << "dir " << dir << " column " << q;
          }
          if (!variational) EXPECT_GT(dropped, 0);
        }
}

// A single layer with input dropout only equals the unwrapped layer run on x / keep * mask (the
// backward direction's mask at time position tau of row b: that of step L_b - 1 - tau, or tau past
// the length, where ReverseSequence leaves the input in place); its input gradient is the
// unwrapped one's times mask / keep, its weight and state gradients the unwrapped ones. Residual:
// the undropped x is added to the output.
TEST(ReferenceSemantics, DropoutInputIsTheScaledMaskedInput) {
  const double keep = 0.75;  // exact in float32, as TF rounds it
  for (bool tm : {false, true})
    for (bool variational : {false, true})
      for (int dir = 0; dir < 2; ++dir)
        for (bool res : {false, true}) {
          SCOPED_TRACE(std::string(tm ? "time-major" : "batch-major") + (variational ? " variational" : "") +
                       (dir ? " bw" : " fw") + (res ? " residual" : ""));
          Options o;
          o.T = 5;
          o.B = 4;
          o.time_major = tm;
          o.has_seq_len = true;
          o.seq_len = dir == 0 ? std::vector<int>{5, 0, 2, 9} : std::vector<int>{5, 0, 2, 4};
          o.seed = 37;
          Cell c = dropout(gru_ra(3), keep, 1.0, variational);
          c.residual = res;
          // bw: a plain fw direction with no upstream, so that the input gradient is the bw direction's.
          const ref::Problem p = dir == 0 ? make_problem({c}, {}, o) : make_problem({rnn(2)}, {c}, o);
          ref::Problem plain = without_dropout(p, false);
          std::vector<double> mask(p.x.size());
          for (int b = 0; b < o.B; ++b) {
            const int L = std::min(std::max(o.seq_len[b], 0), o.T);
            for (int t = 0; t < o.T; ++t)
              for (int q = 0; q < o.D; ++q) {
                const size_t i = user_index(tm, o.T, o.B, o.D, t, b, q);
                const int step = dir == 0 || t >= L ? t : L - 1 - t;
                mask[i] = ref::dropout_mask(p.dropout_seed, dir, 0, 0, variational, step, b, q, keep);
                plain.x[i] = p.x[i] / keep * mask[i];
              }
          }
          const ref::Forward f = ref::forward(p), fp = ref::forward(plain);
          const std::vector<double>& out = dir == 0 ? f.out_fw : f.out_bw;
          const std::vector<double>& out_plain = dir == 0 ? fp.out_fw : fp.out_bw;
          ASSERT_EQ(out.size(), p.x.size());
          for (int b = 0; b < o.B; ++b)
            for (int t = 0; t < o.T; ++t)
              for (int q = 0; q < o.D; ++q) {  // output width == D
                const size_t i = user_index(tm, o.T, o.B, o.D, t, b, q);
                const bool valid = t < o.seq_len[b];
                EXPECT_EQ(out[i], res && valid ? p.x[i] + out_plain[i] : out_plain[i]) << t << " " << b << " " << q;
              }
          const char* d = dir == 0 ? "fw/" : "bw/";
          for (const auto& [k, v] : f.final_state)
            if (k.rfind(d, 0) == 0) EXPECT_EQ(v, fp.final_state.at(k)) << k;
          if (res) continue;  // the gradient with the identity path: finite differences above
          ref::Upstream u = make_upstream(p, 13);
          if (dir == 1) {
            u.dout_fw.clear();
            u.dfinal.erase("fw/0/h");
          }
          const ref::Gradients g = ref::backward(p, u), gp = ref::backward(plain, u);
          ASSERT_EQ(g.dx.size(), p.x.size());
          ASSERT_EQ(gp.dx.size(), p.x.size());
          for (size_t i = 0; i < g.dx.size(); ++i) EXPECT_EQ(g.dx[i], gp.dx[i] * mask[i] / keep) << i;
          EXPECT_EQ(g.dinit, gp.dinit);
          EXPECT_EQ(dir == 0 ? g.dw_fw : g.dw_bw, dir == 0 ? gp.dw_fw : gp.dw_bw);
        }
}

TEST(ReferenceSemantics, EmptyTimeAndBatchDropout) {
  check_empty_time_and_batch(dropout(gru(2), 0.6, 0.7, true));
  check_empty_time_and_batch(residual(dropout(gru_ra(3), 0.6, 0.7)));
}

TEST(ReferenceSemantics, CheckRejectsBadKeepProbs) {
  EXPECT_EQ(ref::check(make_problem({dropout(lstm(2), 1e-9, 1.0)}, {dropout(gru(2), 1.0, 0.5, true)}, Options{})), "");
  for (double bad : {0.0, -0.25, 1.5, std::nan("")})
    for (int site = 0; site < 2; ++site)
      for (int dir = 0; dir < 2; ++dir) {
        Cell c = dropout(gru(2), site == 0 ? bad : 0.5, site == 1 ? bad : 0.5);
        const ref::Problem p =
            dir == 0 ? make_problem({lstm(2), c}, {}, Options{}) : make_problem({lstm(2)}, {lstm(3), c}, Options{});
        const std::string e = ref::check(p);
        SCOPED_TRACE(e);
        EXPECT_NE(e.find(site == 0 ? "input_keep_prob" : "output_keep_prob"), std::string::npos);
        EXPECT_NE(e.find(dir == 0 ? "fw/1" : "bw/1"), std::string::npos);
        EXPECT_NE(e.find("(0, 1]"), std::string::npos);
        EXPECT_THROW(ref::forward(p), std::invalid_argument);
      }
}

// ------------------------------------------------------------------ DropoutWrapper state_keep_prob semantics
// Keep probabilities that are 1 in float32 (TF rounds them so) are no state dropout at all.
TEST(ReferenceSemantics, DropoutStateKeepOneIsNoDropout) {
  for (bool tm : {false, true}) {
    Options o;
    o.time_major = tm;
    o.has_seq_len = true;
    o.seq_len = {3, 0, 4};
    o.dropout_seed = 0x0123456789ABCDEFULL;
    const double one = 1.0 - 1e-9;  // rounds to 1 in float32
    const ref::Problem p =
        make_problem({state_dropout(dropout(lstm(3), 0.6, 0.7, true), 1.0),
                      residual(state_dropout(dropout(gru(3), 0.7, 1.0), one)), state_dropout(rnn(2), one)},
                     {state_dropout(dropout(gru_ra(3), 1.0, 0.6), 1.0)}, o);
    ref::Problem none = p;
    for (std::vector<Cell>* stack : {&none.fw, &none.bw})
      for (Cell& c : *stack) c.state_keep_prob = 1.0;
    expect_same_run(p, none, make_upstream(p, 15));
    expect_same_run(without_dropout(p), without_dropout(none), make_upstream(p, 16));
  }
}

// State dropout changes the final state and (past the first step) the outputs; another seed gives
// other results; the same seed the same ones. T = 1: the outputs are the bare cell's.
TEST(ReferenceSemantics, DropoutStateChangesResultsAndFollowsTheSeed) {
  for (const Cell& c : {state_dropout(gru(3), 0.6), state_dropout(lstm_proj(4, 2), 0.6),
                        state_dropout(dropout(rnn(3), 1.0, 1.0, true), 0.6), state_dropout(basic_lstm(3), 0.6)}) {
    Options o;
    o.has_seq_len = true;
    o.seq_len = {3, 1, 4};
    const ref::Problem p = make_problem({c}, {c}, o);
    const ref::Upstream u = make_upstream(p, 9);
    const ref::Problem plain = without_dropout(p);
    const ref::Forward f = ref::forward(p), fp = ref::forward(plain);
    EXPECT_NE(f.out_fw, fp.out_fw);
    EXPECT_NE(f.out_bw, fp.out_bw);
    EXPECT_NE(f.final_state.at("fw/0/h"), fp.final_state.at("fw/0/h"));
    EXPECT_NE(f.final_state.at("bw/0/h"), fp.final_state.at("bw/0/h"));
    EXPECT_NE(ref::backward(p, u).dx, ref::backward(plain, u).dx);
    expect_same_run(p, p, u);
    ref::Problem other = p;
    other.dropout_seed ^= uint64_t(1) << 40;
    EXPECT_NE(ref::forward(other).final_state.at("fw/0/h"), f.final_state.at("fw/0/h"));
    EXPECT_NE(ref::forward(other).out_bw, f.out_bw);
    // One step: the state mask acts on the state only.
    o.T = 1;
    o.seq_len = {1, 1, 1};
    const ref::Problem p1 = make_problem({c}, {c}, o);
    const ref::Forward f1 = ref::forward(p1), fp1 = ref::forward(without_dropout(p1));
    EXPECT_EQ(f1.out_fw, fp1.out_fw);
    EXPECT_EQ(f1.out_bw, fp1.out_bw);
    EXPECT_NE(f1.final_state, fp1.final_state);
  }
}

// A single layer, one direction, built up one cell call at a time: each call is the bare cell
// (no wrapper) run for one step on every row from the state so far, on the input x / keep_in *
// mask_in (the input mask of loop iteration s, row b); the layer's output at the row's time
// position (s; L - 1 - s for the backward direction) is the call's output (/ keep_out * mask_out
// when output dropout is on), undropped by the state mask; the state carried on is the call's new
// state with h / keep_state * mask_state (an LSTM's c as the call left it); rows past their length
// keep their state, and the final state is the state so far (the initial state for length 0).
TEST(ReferenceSemantics, DropoutStateIsTheScaledMaskedNewH) {
  const double ks = 0.625, ki = 0.75, ko = 0.5;  // exact in float32, as TF rounds them
  Cell peep_proj = lstm_proj(4, 3);
  peep_proj.peepholes = true;
  Cell clipped = lstm(3);
  clipped.has_cell_clip = true;
  clipped.cell_clip = 0.3;
  int dropped_total = 0;
  for (const Cell& bare : {rnn(3), rnn(3, true), basic_lstm(3), lstm(3), peep_proj, clipped, gru(3), gru_ra(3)})
    for (int dir = 0; dir < 2; ++dir)
      for (bool variational : {false, true})
        for (bool others : {false, true})
          for (bool tm : {false, true}) {
            SCOPED_TRACE("kind " + std::to_string(static_cast<int>(bare.kind)) + " units " +
                         std::to_string(bare.units) + (dir ? " bw" : " fw") + (variational ? " variational" : "") +
                         (others ? " input+output dropout" : "") + (tm ? " time-major" : " batch-major"));
            Options o;
            o.T = 5;
            o.B = 5;
            o.time_major = tm;
            o.has_seq_len = true;
            o.seq_len = dir == 0 ? std::vector<int>{5, 0, 2, 7, -1} : std::vector<int>{5, 0, 2, 4, 3};
            o.seed = 43 + dir;
            const Cell c = state_dropout(dropout(bare, others ? ki : 1.0, others ? ko : 1.0, variational), ks);
            const ref::Problem p = dir == 0 ? make_problem({c}, {}, o) : make_problem({rnn(2)}, {c}, o);
            const ref::Forward f = ref::forward(p);
            const std::string d = dir == 0 ? "fw/0/" : "bw/0/";
            const std::vector<double>& out = dir == 0 ? f.out_fw : f.out_bw;
            const int O = ref::output_width(bare), Hh = ref::state_width(bare, "h");
            ASSERT_EQ(out.size(), static_cast<size_t>(o.T) * o.B * O);
            auto mask = [&](int site, int s, int b, int q, double keep) {
              return ref::dropout_mask(p.dropout_seed, dir, 0, site, variational, s, b, q, keep);
            };
            std::vector<int> len(o.B);
            for (int b = 0; b < o.B; ++b) len[b] = std::min(std::max(o.seq_len[b], 0), o.T);
            ref::Named state;
            for (const std::string& leaf : ref::leaves(bare)) state[leaf] = p.init.at(d + leaf);
            int dropped = 0;
            for (int s = 0; s < o.T; ++s) {
              ref::Problem step;
              step.T = 1;
              step.B = o.B;
              step.D = o.D;
              step.fw = {bare};
              step.w_fw = {dir == 0 ? p.w_fw[0] : p.w_bw[0]};
              step.has_initial_state = true;
              for (const auto& [leaf, v] : state) step.init["fw/0/" + leaf] = v;
              for (int b = 0; b < o.B; ++b) {
                const int tau = s < len[b] ? (dir == 0 ? s : len[b] - 1 - s) : 0;  // rows past L: unused
                for (int q = 0; q < o.D; ++q) {
                  const double x = p.x[user_index(tm, o.T, o.B, o.D, tau, b, q)];
                  step.x.push_back(others ? x / ki * mask(0, s, b, q, ki) : x);
                }
              }
              const ref::Forward fs = ref::forward(step);
              for (int b = 0; b < o.B; ++b) {
                if (s >= len[b]) continue;
                const int tau = dir == 0 ? s : len[b] - 1 - s;
                for (int q = 0; q < O; ++q) {
                  const double h = fs.out_fw[static_cast<size_t>(b) * O + q];
                  EXPECT_EQ(out[user_index(tm, o.T, o.B, O, tau, b, q)], others ? h / ko * mask(1, s, b, q, ko) : h)
                      << "step " << s << " row " << b << " column " << q;
                }
                for (auto& [leaf, v] : state) {
                  const std::vector<double>& next = fs.final_state.at("fw/0/" + leaf);
                  const int w = static_cast<int>(v.size()) / o.B;
                  for (int j = 0; j < w; ++j) {
                    const size_t e = static_cast<size_t>(b) * w + j;
                    if (leaf == "h") {
                      const double m = mask(2, s, b, j, ks);
                      dropped += m == 0.0;
                      v[e] = next[e] / ks * m;
                    } else {
                      v[e] = next[e];  // an LSTM's c: never dropped
                    }
                  }
                }
              }
            }
            for (const auto& [leaf, v] : state) EXPECT_EQ(f.final_state.at(d + leaf), v) << leaf;
            // Directly: a full-length row's final h is its last output / keep * mask of the last step
            // (the output undropped); a length-0 row's final state is its initial state.
            for (int b = 0; b < o.B; ++b) {
              for (const std::string& leaf : ref::leaves(bare)) {
                if (len[b] != 0) continue;
                const int w = ref::state_width(bare, leaf.c_str());
                for (int j = 0; j < w; ++j) {
                  const size_t e = static_cast<size_t>(b) * w + j;
                  EXPECT_EQ(f.final_state.at(d + leaf)[e], p.init.at(d + leaf)[e]) << leaf << " row " << b;
                }
              }
              if (others || len[b] != o.T) continue;
              for (int j = 0; j < Hh; ++j) {
                const double last = out[user_index(tm, o.T, o.B, O, dir == 0 ? o.T - 1 : 0, b, j)];
                EXPECT_EQ(f.final_state.at(d + "h")[static_cast<size_t>(b) * Hh + j],
                          last / ks * mask(2, o.T - 1, b, j, ks))
                    << "row " << b << " column " << j;
              }
            }
            if (!variational) EXPECT_GT(dropped, 0);
            dropped_total += dropped;
          }
  EXPECT_GT(dropped_total, 0);
}

// One step on a single layer: the LSTM's c is the bare cell's, h the bare h / keep * mask (the
// initial state at length-0 rows), the outputs the bare ones; the gradients are the bare layer's
// with the final h's upstream multiplied by mask / keep at the rows that ran (not at length-0 rows,
// whose initial-state gradient is their final-state gradient).
TEST(ReferenceSemantics, DropoutStateOneStepForwardAndGradient) {
  const double ks = 0.625;
  Cell peep_proj = lstm_proj(4, 2);
  peep_proj.peepholes = true;
  for (const Cell& bare : {rnn(3), basic_lstm(3), lstm(3), peep_proj, gru(3), gru_ra(3, true)})
    for (int dir = 0; dir < 2; ++dir)
      for (bool variational : {false, true}) {
        SCOPED_TRACE("kind " + std::to_string(static_cast<int>(bare.kind)) + (dir ? " bw" : " fw") +
                     (variational ? " variational" : ""));
        Options o;
        o.T = 1;
        o.B = 4;
        o.has_seq_len = true;
        o.seq_len = {1, 0, 1, 1};
        o.seed = 71 + dir;
        const Cell c = state_dropout(dropout(bare, 1.0, 1.0, variational), ks);
        const ref::Problem p = dir == 0 ? make_problem({c}, {}, o) : make_problem({rnn(2)}, {c}, o);
        const ref::Problem plain = without_dropout(p);
        const std::string d = dir == 0 ? "fw/0/" : "bw/0/";
        const ref::Forward f = ref::forward(p), fp = ref::forward(plain);
        EXPECT_EQ(f.out_fw, fp.out_fw);
        EXPECT_EQ(f.out_bw, fp.out_bw);
        if (f.final_state.count(d + "c")) EXPECT_EQ(f.final_state.at(d + "c"), fp.final_state.at(d + "c"));
        const int Hh = ref::state_width(bare, "h");
        const ref::Upstream u = make_upstream(p, 23);
        ref::Upstream up = u;  // the plain layer's upstream: d(final h) through the mask
        std::vector<double>& dh = up.dfinal.at(d + "h");
        for (int b = 0; b < o.B; ++b)
          for (int j = 0; j < Hh; ++j) {
            const size_t e = static_cast<size_t>(b) * Hh + j;
            const double m = ref::dropout_mask(p.dropout_seed, dir, 0, 2, variational, 0, b, j, ks);
            const double h = fp.final_state.at(d + "h")[e];
            EXPECT_EQ(f.final_state.at(d + "h")[e], o.seq_len[b] > 0 ? h / ks * m : p.init.at(d + "h")[e]);
            if (o.seq_len[b] > 0) dh[e] = dh[e] * m / ks;
          }
        const ref::Gradients g = ref::backward(p, u), gp = ref::backward(plain, up);
        EXPECT_EQ(g.dx, gp.dx);
        EXPECT_EQ(g.dinit, gp.dinit);
        EXPECT_EQ(g.dw_fw, gp.dw_fw);
        EXPECT_EQ(g.dw_bw, gp.dw_bw);
        for (const auto& [k, v] : g.dinit)  // length-0 row 1: the final state's upstream, unmasked
          if (k.rfind(d, 0) == 0) {
            const int w = static_cast<int>(v.size()) / o.B;
            for (int j = 0; j < w; ++j) EXPECT_EQ(v[static_cast<size_t>(w) + j], u.dfinal.at(k)[w + j]) << k;
          }
      }
}

// One step of bidirectional layers (two stacks, or stacked with `o`): every layer's final h is the
// bare problem's / keep * the mask of its own (layer, direction) state stream, its c the bare one;
// the outputs are the bare problem's (at one step the state feeds nothing).
void expect_state_masks_of_every_layer(Options o) {
  const double ks = 0.625;
  for (bool variational : {false, true}) {
    SCOPED_TRACE(variational ? "variational" : "per element");
    o.T = 1;
    o.B = 3;
    o.has_seq_len = true;
    o.seq_len = {1, 1, 1};
    auto sd = [&](Cell c) { return state_dropout(dropout(c, 1.0, 1.0, variational), ks); };
    const ref::Problem p =
        make_problem({sd(gru(3)), sd(lstm_proj(4, 2)), sd(rnn(3))}, {sd(basic_lstm(2)), sd(gru_ra(3)), sd(lstm(2))}, o);
    const ref::Problem plain = without_dropout(p);
    const ref::Forward f = ref::forward(p), fp = ref::forward(plain);
    EXPECT_EQ(f.out_fw, fp.out_fw);
    EXPECT_EQ(f.out_bw, fp.out_bw);
    int dropped = 0;
    for (int dir = 0; dir < 2; ++dir) {
      const std::vector<Cell>& stack = dir == 0 ? p.fw : p.bw;
      for (int l = 0; l < static_cast<int>(stack.size()); ++l) {
        const std::string k = std::string(dir == 0 ? "fw/" : "bw/") + std::to_string(l) + "/";
        if (f.final_state.count(k + "c")) EXPECT_EQ(f.final_state.at(k + "c"), fp.final_state.at(k + "c")) << k;
        const int w = ref::state_width(stack[l], "h");
        for (int b = 0; b < o.B; ++b)
          for (int j = 0; j < w; ++j) {
            const size_t e = static_cast<size_t>(b) * w + j;
            const double m = ref::dropout_mask(p.dropout_seed, dir, l, 2, variational, 0, b, j, ks);
            dropped += m == 0.0;
            EXPECT_EQ(f.final_state.at(k + "h")[e], fp.final_state.at(k + "h")[e] / ks * m)
                << k << " " << b << " " << j;
          }
      }
    }
    EXPECT_GT(dropped, 0);
  }
}

TEST(ReferenceSemantics, DropoutStateMaskOfEveryLayerAndDirection) {
  expect_state_masks_of_every_layer(Options{});
}

TEST(ReferenceSemantics, EmptyTimeAndBatchDropoutState) {
  check_empty_time_and_batch(state_dropout(dropout(gru(2), 0.6, 0.7, true), 0.6));
  check_empty_time_and_batch(state_dropout(lstm(3), 0.6));
  check_empty_time_and_batch(residual(state_dropout(gru_ra(3), 0.6)));
}

TEST(ReferenceSemantics, CheckRejectsBadStateKeepProb) {
  EXPECT_EQ(ref::check(make_problem({state_dropout(lstm(2), 1e-9)}, {state_dropout(gru(2), 1.0)}, Options{})), "");
  for (double bad : {0.0, -0.25, 1.5, std::nan(""), 1e-46 /* > 0, but 0 in float32 */})
    for (int dir = 0; dir < 2; ++dir) {
      const Cell c = state_dropout(dropout(gru(2), 0.5, 0.5), bad);
      const ref::Problem p =
          dir == 0 ? make_problem({lstm(2), c}, {}, Options{}) : make_problem({lstm(2)}, {lstm(3), c}, Options{});
      const std::string e = ref::check(p);
      SCOPED_TRACE(e);
      EXPECT_NE(e.find("state_keep_prob"), std::string::npos);
      EXPECT_NE(e.find(dir == 0 ? "fw/1" : "bw/1"), std::string::npos);
      EXPECT_NE(e.find("(0, 1]"), std::string::npos);
      EXPECT_THROW(ref::forward(p), std::invalid_argument);
    }
}

// ------------------------------------------------------------------ stack_bidirectional_dynamic_rnn semantics
// One layer: stack_bidirectional_dynamic_rnn([fw], [bw]) is bidirectional_dynamic_rnn(fw, bw) bit for
// bit (outputs, final states, every gradient, the kink pattern), dropout and residual included.
TEST(ReferenceSemantics, StackBidirectionalOneLayerIsBidirectional) {
  Cell peep_clip = lstm_all_options();
  for (bool tm : {false, true})
    for (bool lens : {false, true})
      for (bool init : {false, true}) {
        SCOPED_TRACE(std::string(tm ? "time-major" : "batch-major") + (lens ? " lengths" : "") +
                     (init ? " initial state" : ""));
        Options o = all_options_scale();
        o.time_major = tm;
        o.has_seq_len = lens;
        o.seq_len = {0, 4, 2};
        o.has_initial_state = init;
        o.seed = 77;
        const std::vector<std::pair<Cell, Cell>> pairs = {{peep_clip, gru(2)},
                                                          {state_dropout(dropout(gru_ra(3, true), 0.6, 0.7, true), 0.6),
                                                           residual(dropout(lstm_proj(4, 3), 0.7, 0.6))},
                                                          {rnn(3, true), state_dropout(basic_lstm(2), 0.7)}};
        for (const auto& [fw, bw] : pairs) {
          const ref::Problem s = make_problem({fw}, {bw}, stacked(o));
          ref::Problem plain = s;
          plain.stack_bidirectional = false;
          EXPECT_EQ(ref::check(s), "");
          expect_same_run(s, plain, make_upstream(s, 3));
          std::vector<int8_t> ps, pp;
          ref::forward_with_pattern(s, &ps);
          ref::forward_with_pattern(plain, &pp);
          EXPECT_EQ(ps, pp);
          EXPECT_FALSE(ps.empty());
        }
      }
}

// Two layers are the composition of two one-layer bidirectional problems: layer 1's input is layer
// 0's [out_fw, out_bw] concatenated per position (its masked outputs); backward, layer 0's output
// gradients are the two column blocks of layer 1's input gradient. Bit for bit. (Dropout only on
// layer 0, whose masks are layer 0's in both.)
TEST(ReferenceSemantics, StackBidirectionalComposesBidirectionalLayers) {
  for (bool tm : {false, true})
    for (bool lens : {false, true}) {
      SCOPED_TRACE(std::string(tm ? "time-major" : "batch-major") + (lens ? " lengths" : ""));
      const Options o = stacked_5x4(tm, lens ? std::vector<int>{5, 0, 2, 3} : std::vector<int>{}, 91);
      const std::vector<Cell> fw = {state_dropout(dropout(lstm_proj(4, 2), 0.6, 0.7), 0.6), residual(gru(5))};
      const std::vector<Cell> bw = {dropout(gru_ra(3), 0.7, 0.6, true), lstm(2)};
      const ref::Problem s = make_problem(fw, bw, o);
      ASSERT_EQ(ref::check(s), "");
      const int O0f = 2, O0b = 3, W = O0f + O0b, n = o.T * o.B;
      // Layer l alone, on input x of width D.
      auto layer = [&](size_t l, int D, std::vector<double> x) {
        ref::Problem q = s;
        q.stack_bidirectional = false;
        q.D = D;
        q.x = std::move(x);
        q.fw = {fw[l]};
        q.bw = {bw[l]};
        q.w_fw = {s.w_fw[l]};
        q.w_bw = {s.w_bw[l]};
        q.init.clear();
        const std::string at = "/" + std::to_string(l) + "/";
        for (const auto& [k, v] : s.init)
          if (k.find(at) != std::string::npos) q.init[k.substr(0, 3) + "0/" + k.substr(5)] = v;
        return q;
      };
      const ref::Problem p0 = layer(0, s.D, s.x);
      const ref::Forward f0 = ref::forward(p0);
      // Layer 1 on layer 0's concatenated outputs (same layout, n rows either way).
      std::vector<double> x1;
      for (int r = 0; r < n; ++r) {
        for (int q = 0; q < O0f; ++q) x1.push_back(f0.out_fw[static_cast<size_t>(r) * O0f + q]);
        for (int q = 0; q < O0b; ++q) x1.push_back(f0.out_bw[static_cast<size_t>(r) * O0b + q]);
      }
      const ref::Problem p1 = layer(1, W, x1);
      ASSERT_EQ(ref::check(p1), "");
      const ref::Forward f1 = ref::forward(p1), fs = ref::forward(s);
      EXPECT_EQ(fs.out_fw, f1.out_fw);
      EXPECT_EQ(fs.out_bw, f1.out_bw);
      for (const auto& [k, v] : fs.final_state) {
        if (k.find("/0/") != std::string::npos) {
          EXPECT_EQ(v, f0.final_state.at(k)) << k;
        } else {
          EXPECT_EQ(v, f1.final_state.at(k.substr(0, 3) + "0/" + k.substr(5))) << k;
        }
      }
      if (lens)  // the masked outputs: zeros past each row's length in both blocks
        for (int t = 0; t < o.T; ++t)
          for (int b = 0; b < o.B; ++b)
            if (t >= o.seq_len[b]) {
              for (int q = 0; q < W; ++q) EXPECT_EQ(p1.x[user_index(tm, o.T, o.B, W, t, b, q)], 0.0);
            }
      // Backward.
      const ref::Upstream u = make_upstream(s, 4);
      ref::Upstream u1;
      u1.dout_fw = u.dout_fw;
      u1.dout_bw = u.dout_bw;
      for (const auto& [k, v] : u.dfinal)
        if (k.find("/1/") != std::string::npos) u1.dfinal[k.substr(0, 3) + "0/" + k.substr(5)] = v;
      const ref::Gradients g1 = ref::backward(p1, u1);
      ref::Upstream u0;
      for (int r = 0; r < n; ++r) {
        for (int q = 0; q < O0f; ++q) u0.dout_fw.push_back(g1.dx[static_cast<size_t>(r) * W + q]);
        for (int q = 0; q < O0b; ++q) u0.dout_bw.push_back(g1.dx[static_cast<size_t>(r) * W + O0f + q]);
      }
      for (const auto& [k, v] : u.dfinal)
        if (k.find("/0/") != std::string::npos) u0.dfinal[k] = v;
      const ref::Gradients g0 = ref::backward(p0, u0), gs = ref::backward(s, u);
      EXPECT_EQ(gs.dx, g0.dx);
      ASSERT_EQ(gs.dw_fw.size(), 2u);
      ASSERT_EQ(gs.dw_bw.size(), 2u);
      EXPECT_EQ(gs.dw_fw[0], g0.dw_fw[0]);
      EXPECT_EQ(gs.dw_bw[0], g0.dw_bw[0]);
      EXPECT_EQ(gs.dw_fw[1], g1.dw_fw[0]);
      EXPECT_EQ(gs.dw_bw[1], g1.dw_bw[0]);
      EXPECT_EQ(gs.dinit.size(), 6u);  // fw/0/c, fw/0/h, bw/0/h, fw/1/h, bw/1/c, bw/1/h
      for (const auto& [k, v] : gs.dinit) {
        if (k.find("/0/") != std::string::npos) {
          EXPECT_EQ(v, g0.dinit.at(k)) << k;
        } else {
          EXPECT_EQ(v, g1.dinit.at(k.substr(0, 3) + "0/" + k.substr(5))) << k;
        }
      }
    }
}

// The DropoutWrapper masks of stacked layer l are those of layer l (and the direction): with state
// dropout only and one step, the outputs are the undropped problem's and every final h is its h /
// keep * mask(direction, l, state site); with output dropout only on the top layer (2), its outputs
// are the undropped ones / keep * mask(direction, 2, output site, loop iteration).
TEST(ReferenceSemantics, StackBidirectionalDropoutMasksAreThoseOfTheLayer) {
  expect_state_masks_of_every_layer(stacked());
  const double keep = 0.625;
  for (bool tm : {false, true})
    for (bool variational : {false, true}) {
      SCOPED_TRACE(std::string(tm ? "time-major" : "batch-major") + (variational ? " variational" : ""));
      const Options o = stacked_5x4(tm, {5, 0, 2, 4}, 17);
      const ref::Problem p = make_problem({gru(2), lstm(3), dropout(lstm_proj(4, 3), 1.0, keep, variational)},
                                          {rnn(2), gru_ra(2), dropout(gru(3), 1.0, keep, variational)}, o);
      const ref::Forward f = ref::forward(p), fp = ref::forward(without_dropout(p));
      EXPECT_EQ(f.final_state, fp.final_state);
      int dropped = 0;
      for (int dir = 0; dir < 2; ++dir)
        for (int b = 0; b < o.B; ++b)
          for (int t = 0; t < o.T; ++t)
            for (int q = 0; q < 3; ++q) {
              const size_t i = user_index(tm, o.T, o.B, 3, t, b, q);
              const double got = (dir == 0 ? f.out_fw : f.out_bw)[i], bare = (dir == 0 ? fp.out_fw : fp.out_bw)[i];
              if (t >= o.seq_len[b]) {
                EXPECT_EQ(got, 0.0);
                continue;
              }
              const int step = dir == 0 ? t : o.seq_len[b] - 1 - t;
              const double m = ref::dropout_mask(p.dropout_seed, dir, 2, 1, variational, step, b, q, keep);
              dropped += m == 0.0;
              EXPECT_EQ(got, bare / keep * m) << "dir " << dir << " t " << t << " b " << b << " q " << q;
            }
      EXPECT_GT(dropped, 0);
    }
}

TEST(ReferenceSemantics, StackBidirectionalEmptyTimeAndBatch) {
  Options o = stacked();
  o.T = 0;
  const ref::Problem p = make_problem({lstm(3), gru(2)}, {gru_ra(2), state_dropout(lstm_proj(3, 2), 0.6)}, o);
  const ref::Forward f = ref::forward(p);
  EXPECT_TRUE(f.out_fw.empty());
  EXPECT_TRUE(f.out_bw.empty());
  EXPECT_EQ(f.final_state, p.init);
  const ref::Upstream u = make_upstream(p, 3);
  const ref::Gradients g = ref::backward(p, u);
  EXPECT_TRUE(g.dx.empty());
  EXPECT_EQ(g.dinit, u.dfinal);
  ASSERT_EQ(g.dw_fw.size(), 2u);
  ASSERT_EQ(g.dw_bw.size(), 2u);
  for (const auto* dw : {&g.dw_fw, &g.dw_bw})
    for (const ref::Params& layer : *dw)
      for (const auto& [n, v] : layer)
        for (double e : v) EXPECT_EQ(e, 0.0) << n;
  Options ob = stacked();
  ob.B = 0;
  ob.has_seq_len = true;
  const ref::Problem pb = make_problem({lstm(3), gru(2)}, {gru_ra(2), rnn(2)}, ob);
  const ref::Forward fb = ref::forward(pb);
  EXPECT_TRUE(fb.out_fw.empty());
  EXPECT_TRUE(fb.out_bw.empty());
  for (const auto& [k, v] : fb.final_state) EXPECT_TRUE(v.empty()) << k;
  const ref::Gradients gb = ref::backward(pb, ref::Upstream{});
  EXPECT_TRUE(gb.dx.empty());
  EXPECT_EQ(gb.dinit.size(), 5u);
}

TEST(ReferenceSemantics, StackBidirectionalLayerInputWidth) {
  ref::Problem p = make_problem({lstm_proj(4, 2), gru(3), rnn(2)}, {gru(5), rnn(2), lstm(3)}, stacked());
  EXPECT_EQ(ref::layer_input_width(p, 0, 0), 3);
  EXPECT_EQ(ref::layer_input_width(p, 1, 0), 3);
  EXPECT_EQ(ref::layer_input_width(p, 0, 1), 7);
  EXPECT_EQ(ref::layer_input_width(p, 1, 1), 7);
  EXPECT_EQ(ref::layer_input_width(p, 0, 2), 5);
  EXPECT_EQ(ref::layer_input_width(p, 1, 2), 5);
  EXPECT_EQ(ref::check(p), "");
  p.stack_bidirectional = false;  // independent stacks: each its own
  EXPECT_EQ(ref::layer_input_width(p, 0, 1), 2);
  EXPECT_EQ(ref::layer_input_width(p, 1, 1), 5);
  EXPECT_EQ(ref::layer_input_width(p, 0, 2), 3);
  EXPECT_EQ(ref::layer_input_width(p, 1, 2), 2);
  EXPECT_NE(ref::check(p), "");  // the stacked problem's weights do not fit independent stacks
  EXPECT_THROW(ref::layer_input_width(p, 0, 3), std::out_of_range);
  EXPECT_THROW(ref::layer_input_width(p, 1, -1), std::out_of_range);
  EXPECT_THROW(ref::layer_input_width(p, 2, 0), std::out_of_range);
  const ref::Problem uni = make_problem({gru(2), lstm(3)}, {}, Options{});
  EXPECT_EQ(ref::layer_input_width(uni, 0, 1), 2);
  EXPECT_THROW(ref::layer_input_width(uni, 1, 0), std::out_of_range);
}

TEST(ReferenceSemantics, CheckRejectsBadStackBidirectional) {
  const Options o = stacked();
  EXPECT_EQ(ref::check(make_problem({lstm(2), gru(2)}, {gru(3), rnn(2)}, o)), "");
  // Depth mismatch.
  ref::Problem p = make_problem({lstm(2), gru(2)}, {gru(3)}, Options{});
  p.stack_bidirectional = true;
  std::string e = ref::check(p);
  EXPECT_NE(e.find("same depth"), std::string::npos) << e;
  EXPECT_NE(e.find("fw has 2"), std::string::npos) << e;
  EXPECT_THROW(ref::forward(p), std::invalid_argument);
  EXPECT_THROW(ref::backward(p, ref::Upstream{}), std::invalid_argument);
  p = make_problem({lstm(2)}, {gru(3), rnn(2)}, Options{});
  p.stack_bidirectional = true;
  EXPECT_NE(ref::check(p).find("same depth"), std::string::npos) << ref::check(p);
  // No bw cells; no fw cells.
  p = make_problem({lstm(2)}, {}, Options{});
  p.stack_bidirectional = true;
  e = ref::check(p);
  EXPECT_NE(e.find("bw"), std::string::npos) << e;
  EXPECT_NE(e.find("at least one"), std::string::npos) << e;
  EXPECT_THROW(ref::forward(p), std::invalid_argument);
  p = make_problem({lstm(2)}, {gru(2)}, o);
  p.fw.clear();
  p.w_fw.clear();
  p.init.erase("fw/0/c");
  p.init.erase("fw/0/h");
  e = ref::check(p);
  EXPECT_NE(e.find("fw"), std::string::npos) << e;
  EXPECT_NE(e.find("at least one"), std::string::npos) << e;
  // Weights of independent stacks (layer 1 reading 2, not 2 + 3).
  p = make_problem({lstm(2), gru(2)}, {gru(3), rnn(2)}, Options{});
  EXPECT_EQ(ref::check(p), "");
  p.stack_bidirectional = true;
  EXPECT_NE(ref::check(p), "");
  // Residual on layer 1: the concat width, not the layer below's.
  EXPECT_EQ(ref::check(make_problem({gru(2), residual(gru(4))}, {rnn(2), residual(lstm_proj(3, 4))}, o)), "");
  p = make_problem({gru(2), residual(gru(2))}, {rnn(2), rnn(2)}, o);
  e = ref::check(p);
  EXPECT_NE(e.find("fw/1: residual"), std::string::npos) << e;
  // Lengths must be in [0, T] as for every bidirectional problem.
  Options ol = o;
  ol.has_seq_len = true;
  ol.seq_len = {1, -1, 2};
  EXPECT_NE(ref::check(make_problem({lstm(2)}, {lstm(2)}, ol)), "");
  ol.seq_len = {1, 5, 2};
  EXPECT_NE(ref::check(make_problem({lstm(2)}, {lstm(2)}, ol)), "");
  ol.seq_len = {0, 4, 2};
  EXPECT_EQ(ref::check(make_problem({lstm(2)}, {lstm(2)}, ol)), "");
}

}  // namespace
