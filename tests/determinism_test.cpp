// Determinism on the CPU backend: the same inputs give bitwise identical outputs, final states and
// gradients (inputs, initial state, every weight) — on a reused handle, on a fresh handle, with
// output and scratch buffers holding different garbage before the call (so nothing may read a byte
// it did not write), and with swap_memory on and off (documented as numerically neutral); recompute
// runs are deterministic among themselves. Every element type (float32, float64, bfloat16,
// float16), random configurations from testing_support::random_problem, chunks of 1 to 4 steps.
// A backward depends only on its own forward's reserve: twice over one forward, or after another
// forward on the same handle, it gives the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dtype_support.h"
#include "dynrnn/rnn.h"
#include "library_adapter.h"
#include "random_problem.h"

namespace {

using dynrnn::Backend;
using dynrnn::DataType;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using testing_support::CallBuffers;
using testing_support::fill_bytes;

/// Every byte a forward + backward produces.
struct Bytes {
  std::vector<uint8_t> out_fw, out_bw, final_state, dx, dinit, dw;
  bool ok = false;
};

template <typename V>
std::vector<uint8_t> raw(const std::vector<V>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(V));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// One training forward and one backward of `p` through `rnn`; output, workspace and reserve
/// bytes start as `pattern`. With `backward_twice`, backward runs twice and both must agree.
template <typename T>
Bytes run(Rnn& rnn, const ref::Problem& p, const ref::Upstream& u, uint8_t pattern, bool backward_twice = false) {
  Bytes r;
  CallBuffers<T> c(rnn, p.T, p.B, p.time_major);
  if (!c.ok()) {
    ADD_FAILURE() << c.error;
    return r;
  }
  fill_bytes(c.ws, pattern);
  fill_bytes(c.rs, pattern);
  fill_bytes(c.hrs, 0xA5);
  c.set_problem(rnn, p);
  c.fill_results_bytes(pattern);
  dynrnn::Status st = rnn.forward(c.forward_args());
  if (!st.is_ok()) {
    ADD_FAILURE() << "forward: " << st.to_string();
    return r;
  }

  c.set_upstream(rnn, u);
  const dynrnn::BackwardArgs b = c.backward_args();
  st = rnn.backward(b);
  if (!st.is_ok()) {
    ADD_FAILURE() << "backward: " << st.to_string();
    return r;
  }
  if (backward_twice) {
    const std::vector<uint8_t> dx1 = raw(c.dx), dinit1 = raw(c.dinit), dw1 = raw(c.dw);
    c.fill_gradient_bytes(static_cast<uint8_t>(~pattern));
    st = rnn.backward(b);
    if (!st.is_ok()) {
      ADD_FAILURE() << "second backward: " << st.to_string();
      return r;
    }
    EXPECT_TRUE(dx1 == raw(c.dx) && dinit1 == raw(c.dinit) && dw1 == raw(c.dw))
        << "a second backward over the same forward gives different gradients";
  }
  r.out_fw = raw(c.out);
  r.out_bw = raw(c.out_bw);
  r.final_state = raw(c.fin);
  r.dx = raw(c.dx);
  r.dinit = raw(c.dinit);
  r.dw = raw(c.dw);
  r.ok = true;
  return r;
}

/// A training forward whose buffers stay alive, so that its backward can run later.
template <typename T>
struct Session {
  Rnn& rnn;
  CallBuffers<T> c;

  Session(Rnn& r, const ref::Problem& p, const ref::Upstream& u) : rnn(r), c(r, p.T, p.B, p.time_major) {
    EXPECT_TRUE(c.ok()) << c.error;
    fill_bytes(c.ws, 0xFF);
    fill_bytes(c.rs, 0xFF);
    fill_bytes(c.hrs, 0xFF);
    c.set_problem(rnn, p);
    c.set_upstream(rnn, u);
  }
  bool forward() {
    const dynrnn::Status st = rnn.forward(c.forward_args());
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return st.is_ok();
  }
  /// grad_inputs, grad_initial_state and grad_weights, as bytes.
  std::vector<uint8_t> backward() {
    const dynrnn::Status st = rnn.backward(c.backward_args());
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return c.gradients();
  }
};

void expect_identical(const Bytes& a, const Bytes& b, const std::string& what) {
  ASSERT_TRUE(a.ok && b.ok) << what;
  EXPECT_TRUE(a.out_fw == b.out_fw) << what << ": outputs differ";
  EXPECT_TRUE(a.out_bw == b.out_bw) << what << ": outputs_bw differ";
  EXPECT_TRUE(a.final_state == b.final_state) << what << ": final_state differs";
  EXPECT_TRUE(a.dx == b.dx) << what << ": grad_inputs differ";
  EXPECT_TRUE(a.dinit == b.dinit) << what << ": grad_initial_state differs";
  EXPECT_TRUE(a.dw == b.dw) << what << ": grad_weights differ";
}

std::string describe(const RnnSpec& s, const ref::Problem& p) {
  return "T=" + std::to_string(p.T) + " B=" + std::to_string(p.B) + " D=" + std::to_string(p.D) +
         " fw=" + std::to_string(s.cells_fw.size()) + " bw=" + std::to_string(s.cells_bw.size()) +
         " time_major=" + std::to_string(s.time_major) + " lengths=" + std::to_string(p.has_seq_len) +
         " parallel_iterations=" + std::to_string(s.parallel_iterations) + " swap=" + std::to_string(s.swap_memory);
}

template <typename T>
void determinism_sweep(uint64_t seed, int cases) {
  const DataType dtype = testing_support::dtype_of<T>();
  std::mt19937_64 rng(seed);
  testing_support::ProblemOptions opt;
  opt.max_time = 9;  // several chunks with small parallel_iterations
  for (int i = 0; i < cases; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, opt);
    const ref::Upstream u = testing_support::random_upstream(p, rng);
    RnnSpec spec = testing_support::spec_from_problem(p, dtype);
    spec.parallel_iterations = 1 + static_cast<int>(rng() % 4);  // chunks of 1..4 steps
    SCOPED_TRACE("case " + std::to_string(i) + ": " + describe(spec, p));

    std::unique_ptr<Rnn> a;
    ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &a).is_ok());
    const Bytes first = run<T>(*a, p, u, 0xFF);
    // The same handle again, buffers holding other garbage.
    expect_identical(first, run<T>(*a, p, u, 0x00), "same handle, second call");
    expect_identical(first, run<T>(*a, p, u, 0x7F), "same handle, third call");
    // A fresh handle.
    std::unique_ptr<Rnn> b;
    ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &b).is_ok());
    expect_identical(first, run<T>(*b, p, u, 0xA5), "fresh handle");
    // swap_memory on (chunks beyond the two-chunk ring go to host memory and come back).
    RnnSpec swapped = spec;
    swapped.swap_memory = true;
    std::unique_ptr<Rnn> c;
    ASSERT_TRUE(Rnn::create(swapped, Backend::kCpu, &c).is_ok());
    expect_identical(first, run<T>(*c, p, u, 0x5A), "swap_memory on vs off");
    expect_identical(first, run<T>(*c, p, u, 0xFF), "swap_memory on, same handle again");
    // recompute (equal to saving up to the rounding of regenerated GEMMs): deterministic in itself,
    // with and without swap_memory.
    RnnSpec regen = spec;
    regen.recompute = true;
    std::unique_ptr<Rnn> d, e;
    ASSERT_TRUE(Rnn::create(regen, Backend::kCpu, &d).is_ok());
    regen.swap_memory = true;
    ASSERT_TRUE(Rnn::create(regen, Backend::kCpu, &e).is_ok());
    const Bytes recomputed = run<T>(*d, p, u, 0x00);
    expect_identical(recomputed, run<T>(*d, p, u, 0xFF), "recompute, same handle again");
    expect_identical(recomputed, run<T>(*e, p, u, 0xA5), "recompute, swap_memory on vs off");
  }
}

TEST(Determinism, Float32RandomConfigurations) {
  determinism_sweep<float>(0xD0D0, 30);
}
TEST(Determinism, Float64RandomConfigurations) {
  determinism_sweep<double>(0xD0D1, 20);
}
TEST(Determinism, BFloat16RandomConfigurations) {
  determinism_sweep<dynrnn::bfloat16>(0xD0D4, 15);
}
TEST(Determinism, Float16RandomConfigurations) {
  determinism_sweep<dynrnn::float16>(0xD0D5, 15);
}

/// Backward reads the training forward's results; running it twice over one forward (as a caller
/// computing two losses' gradients does) must give the same gradients both times, with and without
/// swap_memory.
TEST(Determinism, BackwardTwiceOverOneForward) {
  std::mt19937_64 rng(0xD0D2);
  testing_support::ProblemOptions opt;
  opt.max_time = 9;
  for (int i = 0; i < 12; ++i) {
    ref::Problem p = testing_support::random_problem(rng, opt);
    if (p.T < 3 || p.B == 0) {
      --i;
      continue;
    }
    const ref::Upstream u = testing_support::random_upstream(p, rng);
    for (bool swap : {false, true}) {
      RnnSpec spec = testing_support::spec_from_problem(p, DataType::kFloat32);
      spec.parallel_iterations = 1;
      spec.swap_memory = swap;
      SCOPED_TRACE("case " + std::to_string(i) + ": " + describe(spec, p));
      std::unique_ptr<Rnn> rnn;
      ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
      run<float>(*rnn, p, u, 0xFF, /*backward_twice=*/true);
    }
  }
}

/// A backward depends only on its arguments (the reserve of its own training forward), not on what
/// else the handle ran in between: forward(A), forward(B), backward(A) gives A's gradients — with
/// and without swap_memory (whose host copies must not be shared between forwards).
TEST(Determinism, BackwardIgnoresAnInterveningForward) {
  std::mt19937_64 rng(0xD0D3);
  testing_support::ProblemOptions opt;
  opt.max_time = 9;
  for (int i = 0; i < 10; ++i) {
    ref::Problem a = testing_support::random_problem(rng, opt);
    if (a.T < 3 || a.B == 0) {
      --i;
      continue;
    }
    // B: the same shapes and cells, other inputs and weights.
    ref::Problem b = a;
    for (double& v : b.x) v = -0.5 * v + 0.25;
    for (auto* stack : {&b.w_fw, &b.w_bw}) {
      for (ref::Params& layer : *stack) {
        for (auto& kv : layer) {
          for (double& v : kv.second) v = 0.9 * v - 0.05;
        }
      }
    }
    const ref::Upstream u = testing_support::random_upstream(a, rng);
    for (bool swap : {false, true}) {
      RnnSpec spec = testing_support::spec_from_problem(a, DataType::kFloat32);
      spec.parallel_iterations = 1;
      spec.swap_memory = swap;
      SCOPED_TRACE("case " + std::to_string(i) + ": " + describe(spec, a));
      std::unique_ptr<Rnn> r1, r2;
      ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &r1).is_ok());
      ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &r2).is_ok());
      Session<float> alone(*r1, a, u);
      ASSERT_TRUE(alone.forward());
      const std::vector<uint8_t> want = alone.backward();
      Session<float> first(*r2, a, u), second(*r2, b, u);
      ASSERT_TRUE(first.forward());
      ASSERT_TRUE(second.forward());
      EXPECT_TRUE(first.backward() == want) << "backward of the first forward saw the second forward's activations";
    }
  }
}

}  // namespace
