#include "random_problem.h"

#include <algorithm>
#include <sstream>

namespace testing_support {
namespace {

int uniform_int(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}
double uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}
bool coin(std::mt19937_64& rng, double p) {
  return uniform(rng, 0, 1) < p;
}

std::vector<double> random_vector(std::mt19937_64& rng, size_t n, double scale) {
  std::vector<double> v(n);
  for (double& x : v) x = uniform(rng, -scale, scale);
  return v;
}

ref::Cell random_cell(std::mt19937_64& rng, const ProblemOptions& opt) {
  ref::Cell c;
  c.kind = static_cast<ref::CellKind>(uniform_int(rng, 0, 4));
  c.units = uniform_int(rng, 1, opt.max_units);
  c.relu = opt.allow_relu && coin(rng, 0.2);
  if (c.kind == ref::CellKind::BasicLSTM || c.kind == ref::CellKind::LSTM) {
    const double fb[] = {1.0, 0.0, 2.5, -0.5};
    c.forget_bias = fb[uniform_int(rng, 0, 3)];
  }
  if (c.kind == ref::CellKind::LSTM) {
    c.peepholes = coin(rng, 0.5);
    c.has_cell_clip = opt.allow_clip && coin(rng, 0.4);
    c.cell_clip = uniform(rng, 0.05, 0.6);
    c.num_proj = coin(rng, 0.5) ? uniform_int(rng, 1, opt.max_units) : 0;
    c.has_proj_clip = opt.allow_clip && c.num_proj > 0 && coin(rng, 0.5);
    c.proj_clip = uniform(rng, 0.05, 0.4);
  }
  return c;
}

std::vector<ref::Cell> random_stack(std::mt19937_64& rng, const ProblemOptions& opt) {
  std::vector<ref::Cell> cells(static_cast<size_t>(uniform_int(rng, 1, opt.max_layers)));
  for (ref::Cell& c : cells) c = random_cell(rng, opt);
  return cells;
}

// ResidualWrapper on each layer whose input width equals its output width, with probability 1/2.
// `side` is an engine of its own, so the problem's other draws are those it had before residual
// layers existed.
void add_residual_layers(ref::Problem& p, int direction, std::mt19937_64& side) {
  std::vector<ref::Cell>& stack = direction == 0 ? p.fw : p.bw;
  for (size_t l = 0; l < stack.size(); ++l)
    if (ref::layer_input_width(p, direction, static_cast<int>(l)) == ref::output_width(stack[l]))
      stack[l].residual = coin(side, 0.5);
}

// DropoutWrapper on each layer with probability 1/5: input, output or both keep probabilities in
// [0.5, 0.95], variational_recurrent with probability 1/3. From `side`, as the residual layers, and
// drawn after them, so that the residual layers are those drawn before dropout existed.
void add_dropout_layers(std::vector<ref::Cell>& stack, std::mt19937_64& side) {
  for (ref::Cell& c : stack) {
    if (!coin(side, 0.2)) continue;
    const int sites = uniform_int(side, 0, 2);  // 0: input, 1: output, 2: both
    if (sites != 1) c.input_keep_prob = uniform(side, 0.5, 0.95);
    if (sites != 0) c.output_keep_prob = uniform(side, 0.5, 0.95);
    c.variational_recurrent = coin(side, 1.0 / 3.0);
  }
}

// DropoutWrapper's state_keep_prob in [0.5, 0.95] on each layer that got dropout above, with
// probability 1/3. From `side` after every other draw of the problem on it (the dropout seed too),
// so that problems without dropout layers, and the other settings of those with them, are those
// drawn before state dropout existed.
void add_state_dropout(std::vector<ref::Cell>& stack, std::mt19937_64& side) {
  for (ref::Cell& c : stack) {
    if (c.input_keep_prob == 1.0 && c.output_keep_prob == 1.0) continue;
    if (coin(side, 1.0 / 3.0)) c.state_keep_prob = uniform(side, 0.5, 0.95);
  }
}

}  // namespace

ref::Problem random_problem(std::mt19937_64& rng, const ProblemOptions& opt) {
  // Seeded from (without advancing) `rng`: a stream uncorrelated with the problem's own draws.
  std::mt19937_64 side = rng;
  side.seed(side() ^ 0x5265736964756131ULL);
  // Likewise for stack_bidirectional, so that the other problems are those drawn before it existed.
  std::mt19937_64 stacking = rng;
  stacking.seed(stacking() ^ 0x537461636b426964ULL);
  ref::Problem p;
  p.T = coin(rng, 0.05) ? 0 : uniform_int(rng, 1, opt.max_time);
  p.B = coin(rng, 0.03) ? 0 : uniform_int(rng, 1, opt.max_batch);
  p.D = uniform_int(rng, 1, opt.max_depth);
  p.time_major = coin(rng, 0.5);
  p.fw = random_stack(rng, opt);
  const bool bi = coin(rng, 0.3);
  if (bi) p.bw = random_stack(rng, opt);
  // stack_bidirectional_dynamic_rnn for a third of the bidirectional problems, both stacks cut to
  // the depth of the shorter one.
  if (bi && coin(stacking, 1.0 / 3.0)) {
    p.stack_bidirectional = true;
    const size_t depth = std::min(p.fw.size(), p.bw.size());
    p.fw.resize(depth);
    p.bw.resize(depth);
  }
  add_residual_layers(p, 0, side);
  add_residual_layers(p, 1, side);
  add_dropout_layers(p.fw, side);
  add_dropout_layers(p.bw, side);
  p.dropout_seed = side();
  add_state_dropout(p.fw, side);
  add_state_dropout(p.bw, side);
  p.x = random_vector(rng, static_cast<size_t>(p.T * p.B * p.D), 1.0);
  p.has_seq_len = coin(rng, 0.6);
  if (p.has_seq_len) {
    // Unidirectional: anything, negative and > T included; bidirectional: 0..T as ReverseSequence demands.
    const int lo = bi ? 0 : -2, hi = bi ? p.T : p.T + 2;
    for (int b = 0; b < p.B; ++b) p.seq_len.push_back(uniform_int(rng, lo, hi));
  }
  for (int d = 0; d < (bi ? 2 : 1); ++d) {
    const std::vector<ref::Cell>& stack = d == 0 ? p.fw : p.bw;
    std::vector<ref::Params>& w = d == 0 ? p.w_fw : p.w_bw;
    for (size_t l = 0; l < stack.size(); ++l) {
      w.push_back(ref::random_params(stack[l], ref::layer_input_width(p, d, static_cast<int>(l)), rng, 0.7));
    }
  }
  p.has_initial_state = coin(rng, 0.6);
  if (p.has_initial_state) {
    for (int d = 0; d < (bi ? 2 : 1); ++d) {
      const std::vector<ref::Cell>& stack = d == 0 ? p.fw : p.bw;
      for (size_t l = 0; l < stack.size(); ++l) {
        for (const std::string& leaf : ref::leaves(stack[l])) {
          const std::string key = std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + leaf;
          p.init[key] = random_vector(rng, static_cast<size_t>(p.B * ref::state_width(stack[l], leaf.c_str())), 0.8);
        }
      }
    }
  }
  return p;
}

ref::Upstream random_upstream(const ref::Problem& p, std::mt19937_64& rng) {
  ref::Upstream u;
  const size_t TB = static_cast<size_t>(p.T * p.B);
  if (coin(rng, 0.9)) u.dout_fw = random_vector(rng, TB * ref::output_width(p.fw.back()), 1.0);
  if (!p.bw.empty() && coin(rng, 0.9)) u.dout_bw = random_vector(rng, TB * ref::output_width(p.bw.back()), 1.0);
  for (int d = 0; d < (p.bw.empty() ? 1 : 2); ++d) {
    const std::vector<ref::Cell>& stack = d == 0 ? p.fw : p.bw;
    for (size_t l = 0; l < stack.size(); ++l) {
      for (const std::string& leaf : ref::leaves(stack[l])) {
        if (!coin(rng, 0.8)) continue;
        const std::string key = std::string(d == 0 ? "fw/" : "bw/") + std::to_string(l) + "/" + leaf;
        u.dfinal[key] = random_vector(rng, static_cast<size_t>(p.B * ref::state_width(stack[l], leaf.c_str())), 1.0);
      }
    }
  }
  return u;
}

std::string describe(const ref::Problem& p) {
  std::ostringstream os;
  auto stack = [&](const std::vector<ref::Cell>& cells) {
    for (const ref::Cell& c : cells) {
      const char* kinds[] = {"basic_rnn", "basic_lstm", "lstm", "gru", "gru_ra"};
      os << " " << kinds[static_cast<int>(c.kind)] << "(H=" << c.units << (c.relu ? ",relu" : "")
         << ",fb=" << c.forget_bias << (c.peepholes ? ",peep" : "") << (c.has_cell_clip ? ",cclip" : "")
         << ",P=" << c.num_proj << (c.has_proj_clip ? ",pclip" : "") << (c.residual ? ",residual" : "");
      if (c.input_keep_prob != 1.0) os << ",keep_in=" << c.input_keep_prob;
      if (c.output_keep_prob != 1.0) os << ",keep_out=" << c.output_keep_prob;
      if (c.state_keep_prob != 1.0) os << ",keep_state=" << c.state_keep_prob;
      if (c.variational_recurrent) os << ",variational";
      os << ")";
    }
  };
  os << "T=" << p.T << " B=" << p.B << " D=" << p.D << (p.time_major ? " time_major" : " batch_major")
     << (p.has_initial_state ? " init" : "") << " dropout_seed=" << p.dropout_seed << " fw:";
  stack(p.fw);
  if (!p.bw.empty()) {
    os << (p.stack_bidirectional ? " stacked bw:" : " bw:");
    stack(p.bw);
  }
  if (p.has_seq_len) {
    os << " len=[";
    for (int l : p.seq_len) os << l << " ";
    os << "]";
  }
  return os.str();
}

}  // namespace testing_support
