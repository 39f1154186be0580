// DropoutWrapper (CellSpec::input_keep_prob, output_keep_prob, variational_recurrent) on the CPU path,
// through the public API: where the masks apply, what they are keyed by, and what the seed does.
// That the values are TensorFlow's is the float64 reference's job (finite differences, random
// configurations) and TensorFlow's own (the dropout_* fixtures).
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "call_buffers.h"
#include "dynrnn/dropout_mask.h"

namespace {

using dynrnn::CellSpec;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using testing_support::CallBuffers;

constexpr int64_t kT = 7, kB = 5;

/// A bidirectional stack with dropout at every kind of site: inner and top layers, input, output and
/// state, variational, under a ResidualWrapper.
RnnSpec dropout_spec() {
  RnnSpec s;
  s.input_size = 5;
  CellSpec lstm = CellSpec::lstm(5);
  lstm.input_keep_prob = 0.7;
  lstm.output_keep_prob = 0.8;
  lstm.state_keep_prob = 0.85;
  CellSpec gru = CellSpec::gru(5);
  gru.output_keep_prob = 0.6;
  gru.variational_recurrent = true;
  gru.residual = true;
  CellSpec rnn = CellSpec::basic_rnn(4);
  rnn.input_keep_prob = 0.5;
  rnn.state_keep_prob = 0.75;
  s.cells_fw = {lstm, gru};
  s.cells_bw = {rnn};
  s.dtype = dynrnn::DataType::kFloat64;
  return s;
}

struct Call {
  std::unique_ptr<Rnn> rnn;
  std::unique_ptr<CallBuffers<double>> buf;
};

Call make_call(const RnnSpec& spec, int64_t T = kT, int64_t B = kB, bool training = true) {
  Call c;
  EXPECT_TRUE(Rnn::create(spec, dynrnn::Backend::kCpu, &c.rnn).is_ok());
  c.buf = std::make_unique<CallBuffers<double>>(*c.rnn, T, B, spec.time_major, training);
  EXPECT_TRUE(c.buf->ok()) << c.buf->error;
  c.buf->set_sine_problem(*c.rnn);
  return c;
}

/// A training forward and its backward with the given seed (and, if set, the seed in memory).
void run(Call& c, uint64_t seed, const uint64_t* seed_at = nullptr) {
  dynrnn::ForwardArgs f = c.buf->forward_args();
  f.dropout_seed = seed;
  f.dropout_seed_at = seed_at;
  const dynrnn::Status st = c.rnn->forward(f);
  ASSERT_TRUE(st.is_ok()) << st.message();
  dynrnn::BackwardArgs b = c.buf->backward_args();
  b.dropout_seed = seed;
  b.dropout_seed_at = seed_at;
  const dynrnn::Status bst = c.rnn->backward(b);
  ASSERT_TRUE(bst.is_ok()) << bst.message();
}

/// A training forward and backward of T steps of a batch of B without sequence lengths.
Call run_without_lengths(const RnnSpec& spec, int64_t T, int64_t B, uint64_t seed) {
  Call c = make_call(spec, T, B);
  c.buf->len.clear();
  run(c, seed);
  return c;
}

std::vector<uint8_t> results_of(const RnnSpec& spec, uint64_t seed, const uint64_t* seed_at = nullptr) {
  Call c = make_call(spec);
  run(c, seed, seed_at);
  return c.buf->results();
}

TEST(Dropout, TheSeedDecidesTheMasks) {
  const RnnSpec spec = dropout_spec();
  const std::vector<uint8_t> a = results_of(spec, 1);
  EXPECT_EQ(a, results_of(spec, 1)) << "the same seed must give the same bits";
  // Outputs, input gradients and weight gradients all change with the masks.
  Call c1 = make_call(spec), c2 = make_call(spec);
  run(c1, 1);
  run(c2, uint64_t(1) << 32);  // only the key's high word differs
  EXPECT_NE(c1.buf->out, c2.buf->out);
  EXPECT_NE(c1.buf->out_bw, c2.buf->out_bw);
  EXPECT_NE(c1.buf->dx, c2.buf->dx);
  EXPECT_NE(c1.buf->dw, c2.buf->dw);
}

// dropout_seed_at overrides dropout_seed, in forward and in backward.
TEST(Dropout, TheSeedInMemoryIsTheSeed) {
  const RnnSpec spec = dropout_spec();
  const uint64_t seed = 0x123456789abcdefull;
  EXPECT_EQ(results_of(spec, 7, &seed), results_of(spec, seed));
}

TEST(Dropout, InferenceDrawsTheTrainingMasks) {
  const RnnSpec spec = dropout_spec();
  Call train = make_call(spec);
  run(train, 42);
  Call infer = make_call(spec, kT, kB, /*training=*/false);
  dynrnn::ForwardArgs f = infer.buf->forward_args(/*training=*/false);
  f.dropout_seed = 42;
  const dynrnn::Status st = infer.rnn->forward(f);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(infer.buf->out, train.buf->out);
  EXPECT_EQ(infer.buf->out_bw, train.buf->out_bw);
  EXPECT_EQ(infer.buf->fin, train.buf->fin);
}

// Keep probabilities of 1 are no DropoutWrapper at all (TF's Python float 1.0), whatever the seed.
TEST(Dropout, KeepOneIsTheBareCell) {
  RnnSpec bare = dropout_spec();
  for (auto* cells : {&bare.cells_fw, &bare.cells_bw}) {
    for (CellSpec& c : *cells) {
      c.input_keep_prob = 1.0;
      c.output_keep_prob = 1.0;
      c.state_keep_prob = 1.0;
    }
  }
  RnnSpec none = bare;
  for (auto* cells : {&none.cells_fw, &none.cells_bw}) {
    for (CellSpec& c : *cells) c.variational_recurrent = false;
  }
  EXPECT_EQ(results_of(bare, 5), results_of(none, 0));
}

/// A one-layer BasicRNN of `units` without lengths, its output dropped with `keep`.
RnnSpec top_output_dropout(double keep, bool variational) {
  RnnSpec s;
  s.input_size = 3;
  CellSpec c = CellSpec::basic_rnn(16);
  c.output_keep_prob = keep;
  c.variational_recurrent = variational;
  s.cells_fw = {c};
  s.dtype = dynrnn::DataType::kFloat64;
  return s;
}

// Output dropout on the top layer: each output is 0 or the bare cell's output / keep, about 1 - keep
// of them 0; the state is the bare cell's.
TEST(Dropout, OutputMaskKeepsOrZeroesEachOutput) {
  const double keep = 0.75;
  const int64_t T = 20, B = 64;
  for (bool variational : {false, true}) {
    const Call bare = run_without_lengths(top_output_dropout(1.0, false), T, B, 3);
    const Call drop = run_without_lengths(top_output_dropout(keep, variational), T, B, 3);
    EXPECT_EQ(drop.buf->fin, bare.buf->fin);
    int64_t zeros = 0;
    const int64_t H = 16;
    std::vector<int> column_kept(H, -1);
    for (size_t i = 0; i < drop.buf->out.size(); ++i) {
      const double v = drop.buf->out[i], h = bare.buf->out[i];
      ASSERT_TRUE(v == 0.0 || v == h / keep) << "output " << i << ": " << v << " from h = " << h;
      const bool kept = v != 0.0;
      zeros += !kept;
      if (!variational) continue;
      int& k = column_kept[i % H];  // one mask for every row and step
      if (k < 0) k = kept;
      ASSERT_EQ(k, int(kept)) << "column " << i % H << " at output " << i;
    }
    if (!variational) {
      const double dropped = double(zeros) / double(drop.buf->out.size());
      EXPECT_NEAR(dropped, 1.0 - keep, 0.02) << "fraction of outputs dropped";
    }
  }
}

// Input dropout on layer 0 is the bare cell run on x * mask / keep, with the mask of each caller row
// and step (dropout_mask.h) even when the batch runs sorted by length; its input gradient is the bare
// cell's times mask / keep.
TEST(Dropout, InputMaskScalesTheCellsInputPerCallerRowAndStep) {
  const double keep = 0.625;
  const uint64_t seed = 77;
  for (bool time_major : {false, true}) {
    RnnSpec spec;
    spec.input_size = 4;
    spec.time_major = time_major;
    spec.dtype = dynrnn::DataType::kFloat64;
    spec.cells_fw = {CellSpec::gru_reset_after(6)};
    RnnSpec dropped = spec;
    dropped.cells_fw[0].input_keep_prob = keep;
    Call drop = make_call(dropped);
    drop.buf->len = {3, 7, 0, 5, 7};  // not in length order: the run sorts the batch
    run(drop, seed);
    // x' = x / keep * mask, at caller row b and step t (the forward direction's step is its time).
    Call bare = make_call(spec);
    bare.buf->len = drop.buf->len;
    dynrnn::dropout::Mask<double> m;
    m.seed = seed;
    m.stream = dynrnn::dropout::stream(0, 0, dynrnn::dropout::Site::kInput);
    m.keep = keep;
    std::vector<double> mask(bare.buf->x.size());
    for (int64_t t = 0; t < kT; ++t) {
      for (int64_t b = 0; b < kB; ++b) {
        for (int64_t j = 0; j < 4; ++j) {
          const size_t i = static_cast<size_t>(((time_major ? t * kB + b : b * kT + t) * 4) + j);
          mask[i] = m.at(t, b, j);
          bare.buf->x[i] = bare.buf->x[i] / keep * mask[i];
        }
      }
    }
    run(bare, seed);
    EXPECT_EQ(drop.buf->out, bare.buf->out);
    EXPECT_EQ(drop.buf->fin, bare.buf->fin);
    EXPECT_EQ(drop.buf->dw, bare.buf->dw);
    EXPECT_EQ(drop.buf->dinit, bare.buf->dinit);
    for (size_t i = 0; i < mask.size(); ++i) {
      ASSERT_EQ(drop.buf->dx[i], bare.buf->dx[i] * mask[i] / keep) << "dx element " << i;
    }
  }
}

// TF computes with the float32 rounding of a keep probability, in float64 cells too (DropoutWrapper
// makes a float32 constant of the Python float), and a value that rounds to 1 is no dropout.
TEST(Dropout, KeepProbabilitiesAreTheirFloat32Rounding) {
  auto with_keeps = [](double in, double out) {
    RnnSpec s = dropout_spec();
    for (auto* cells : {&s.cells_fw, &s.cells_bw}) {
      for (CellSpec& c : *cells) {
        c.input_keep_prob = in;
        c.output_keep_prob = out;
        c.state_keep_prob = in;
      }
    }
    return s;
  };
  const double in = 0.7, out = 0.9;
  ASSERT_NE(static_cast<double>(static_cast<float>(in)), in);
  EXPECT_EQ(results_of(with_keeps(in, out), 11),
            results_of(with_keeps(static_cast<float>(in), static_cast<float>(out)), 11));
  EXPECT_EQ(results_of(with_keeps(1.0 - 1e-9, 1.0 - 1e-9), 11), results_of(with_keeps(1.0, 1.0), 11));
}

// The state mask drops the new state (an LSTM's h, never its c), not the output: after one step the
// output is the bare cell's, and the final state's h is 0 or that output / keep.
TEST(Dropout, StateMaskDropsTheStateNotTheOutput) {
  const double keep = 0.75;
  const int64_t B = 32;
  for (CellSpec cell : {CellSpec::basic_rnn(8), CellSpec::lstm(8), CellSpec::gru_reset_after(8)}) {
    for (bool variational : {false, true}) {
      RnnSpec bare;
      bare.input_size = 3;
      bare.dtype = dynrnn::DataType::kFloat64;
      bare.cells_fw = {cell};
      RnnSpec dropped = bare;
      dropped.cells_fw[0].state_keep_prob = keep;
      dropped.cells_fw[0].variational_recurrent = variational;
      const Call a = run_without_lengths(bare, 1, B, 9), d = run_without_lengths(dropped, 1, B, 9);
      EXPECT_EQ(d.buf->out, a.buf->out);
      int64_t zeros = 0;
      for (const dynrnn::StateLeaf& leaf : d.rnn->state_layout()) {
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t j = 0; j < leaf.width; ++j) {
            const size_t i = static_cast<size_t>(B * leaf.column_offset + b * leaf.width + j);
            const double got = d.buf->fin[i], bare_state = a.buf->fin[i];
            if (leaf.is_cell) {
              ASSERT_EQ(got, bare_state) << "c is never dropped: row " << b;
              continue;
            }
            const double h = d.buf->out[static_cast<size_t>(b * leaf.width + j)];
            ASSERT_TRUE(got == 0.0 || got == h / keep) << leaf.name << " row " << b << ": " << got << " from h " << h;
            zeros += got == 0.0;
          }
        }
      }
      EXPECT_GT(zeros, 0);
    }
  }
}

}  // namespace
