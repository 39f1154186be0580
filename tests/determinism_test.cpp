// Determinism on the CPU backend: the same inputs give bitwise identical outputs, final states and
// gradients (inputs, initial state, every weight) — on a reused handle, on a fresh handle, with
// output and scratch buffers holding different garbage before the call (so nothing may read a byte
// it did not write), and with swap_memory on and off (documented as numerically neutral); recompute
// runs are deterministic among themselves. float32 and float64, random configurations from
// testing_support::random_problem, chunks of 1 to 4 steps. A backward depends only on its own
// forward's reserve: twice over one forward, or after another forward on the same handle, it gives
// the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dynrnn/rnn.h"
#include "library_adapter.h"
#include "random_problem.h"

namespace {

using dynrnn::Backend;
using dynrnn::DataType;
using dynrnn::Rnn;
using dynrnn::RnnSpec;

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

/// Fills every byte with `pattern` (0xFF: NaN in both float types; 0x00: zeros).
template <typename V>
void poison(std::vector<V>& v, uint8_t pattern) {
  if (!v.empty()) std::memset(v.data(), pattern, v.size() * sizeof(V));
}

/// Packs named state leaves into the flat state layout (missing leaves are zero).
template <typename T>
std::vector<T> pack_state(const Rnn& rnn, const ref::Named& leaves, int64_t B) {
  std::vector<T> flat(static_cast<size_t>(B * rnn.state_width()), T(0));
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    auto it = leaves.find(leaf.name);
    if (it == leaves.end()) continue;
    for (size_t i = 0; i < it->second.size(); ++i) flat[B * leaf.column_offset + i] = static_cast<T>(it->second[i]);
  }
  return flat;
}

/// One training forward and one backward of `p` through `rnn`; output, workspace and reserve
/// bytes start as `pattern`. With `backward_twice`, backward runs twice and both must agree.
template <typename T>
Bytes run(Rnn& rnn, const ref::Problem& p, const ref::Upstream& u, uint8_t pattern, bool backward_twice = false) {
  Bytes r;
  const int64_t T_ = p.T, B = p.B;
  size_t ws_bytes = 0, rs_bytes = 0;
  if (!rnn.get_workspace_size(T_, B, true, &ws_bytes).is_ok() || !rnn.get_reserve_size(T_, B, &rs_bytes).is_ok()) {
    ADD_FAILURE() << "size query failed";
    return r;
  }
  size_t host_bytes = 0;
  if (!rnn.get_host_reserve_size(T_, B, &host_bytes).is_ok()) {
    ADD_FAILURE() << "get_host_reserve_size failed";
    return {};
  }
  std::vector<uint8_t> ws(ws_bytes), rs(rs_bytes), hrs(host_bytes, 0xA5);
  poison(ws, pattern);
  poison(rs, pattern);
  std::vector<T> x(p.x.begin(), p.x.end());
  std::vector<double> wd = testing_support::flat_weights(rnn, p);
  std::vector<T> w(wd.begin(), wd.end());
  std::vector<T> init = pack_state<T>(rnn, p.init, B);
  std::vector<int32_t> len(p.seq_len.begin(), p.seq_len.end());
  const bool bi = !p.bw.empty();
  std::vector<T> out_fw(static_cast<size_t>(T_ * B * rnn.output_width(0)));
  std::vector<T> out_bw(bi ? static_cast<size_t>(T_ * B * rnn.output_width(1)) : 0);
  std::vector<T> fin(static_cast<size_t>(B * rnn.state_width()));
  poison(out_fw, pattern);
  poison(out_bw, pattern);
  poison(fin, pattern);

  dynrnn::ForwardArgs f;
  f.x_shape[0] = p.time_major ? T_ : B;
  f.x_shape[1] = p.time_major ? B : T_;
  f.x_shape[2] = p.D;
  f.x = x.data();
  if (p.has_seq_len) {
    f.sequence_length = len.data();
    f.sequence_length_size = B;
  }
  f.initial_state = p.has_initial_state ? init.data() : nullptr;
  f.weights = w.data();
  f.outputs = out_fw.data();
  f.outputs_bw = bi ? out_bw.data() : nullptr;
  f.final_state = fin.data();
  f.workspace = ws.data();
  f.workspace_bytes = ws_bytes;
  f.training = true;
  f.reserve = rs.data();
  f.reserve_bytes = rs_bytes;
  f.host_reserve = hrs.empty() ? nullptr : hrs.data();
  f.host_reserve_bytes = hrs.size();
  dynrnn::Status st = rnn.forward(f);
  if (!st.is_ok()) {
    ADD_FAILURE() << "forward: " << st.to_string();
    return r;
  }

  std::vector<T> dout_fw(u.dout_fw.begin(), u.dout_fw.end()), dout_bw(u.dout_bw.begin(), u.dout_bw.end());
  std::vector<T> dfin = pack_state<T>(rnn, u.dfinal, B);
  std::vector<T> dx(x.size()), dinit(fin.size()), dw(w.size());
  poison(dx, pattern);
  poison(dinit, pattern);
  poison(dw, pattern);
  dynrnn::BackwardArgs b;
  std::copy(f.x_shape, f.x_shape + 3, b.x_shape);
  b.x = x.data();
  b.sequence_length = f.sequence_length;
  b.sequence_length_size = f.sequence_length_size;
  b.initial_state = f.initial_state;
  b.weights = w.data();
  b.grad_outputs = dout_fw.empty() ? nullptr : dout_fw.data();
  b.grad_outputs_bw = dout_bw.empty() ? nullptr : dout_bw.data();
  b.grad_final_state = dfin.data();
  b.grad_inputs = dx.data();
  b.grad_initial_state = dinit.data();
  b.grad_weights = dw.data();
  b.workspace = ws.data();
  b.workspace_bytes = ws_bytes;
  b.reserve = rs.data();
  b.reserve_bytes = rs_bytes;
  b.host_reserve = f.host_reserve;
  b.host_reserve_bytes = f.host_reserve_bytes;
  st = rnn.backward(b);
  if (!st.is_ok()) {
    ADD_FAILURE() << "backward: " << st.to_string();
    return r;
  }
  if (backward_twice) {
    const std::vector<uint8_t> dx1 = raw(dx), dinit1 = raw(dinit), dw1 = raw(dw);
    poison(dx, static_cast<uint8_t>(~pattern));
    poison(dinit, static_cast<uint8_t>(~pattern));
    poison(dw, static_cast<uint8_t>(~pattern));
    st = rnn.backward(b);
    if (!st.is_ok()) {
      ADD_FAILURE() << "second backward: " << st.to_string();
      return r;
    }
    EXPECT_TRUE(dx1 == raw(dx) && dinit1 == raw(dinit) && dw1 == raw(dw))
        << "a second backward over the same forward gives different gradients";
  }
  r.out_fw = raw(out_fw);
  r.out_bw = raw(out_bw);
  r.final_state = raw(fin);
  r.dx = raw(dx);
  r.dinit = raw(dinit);
  r.dw = raw(dw);
  r.ok = true;
  return r;
}


/// A training forward whose buffers stay alive, so that its backward can run later.
template <typename T>
struct Session {
  const ref::Problem& p;
  const ref::Upstream& u;
  Rnn& rnn;
  std::vector<uint8_t> ws, rs, hrs;
  std::vector<T> x, w, init, out_fw, out_bw, fin;
  std::vector<int32_t> len;
  dynrnn::ForwardArgs f;

  Session(Rnn& r, const ref::Problem& prob, const ref::Upstream& up) : p(prob), u(up), rnn(r) {
    const int64_t T_ = p.T, B = p.B;
    size_t ws_bytes = 0, rs_bytes = 0;
    EXPECT_TRUE(rnn.get_workspace_size(T_, B, true, &ws_bytes).is_ok());
    EXPECT_TRUE(rnn.get_reserve_size(T_, B, &rs_bytes).is_ok());
    ws.assign(ws_bytes, 0xFF);
    rs.assign(rs_bytes, 0xFF);
    size_t host_bytes = 0;
    EXPECT_TRUE(rnn.get_host_reserve_size(T_, B, &host_bytes).is_ok());
    hrs.assign(host_bytes, 0xFF);
    x.assign(p.x.begin(), p.x.end());
    const std::vector<double> wd = testing_support::flat_weights(rnn, p);
    w.assign(wd.begin(), wd.end());
    init = pack_state<T>(rnn, p.init, B);
    len.assign(p.seq_len.begin(), p.seq_len.end());
    out_fw.assign(static_cast<size_t>(T_ * B * rnn.output_width(0)), T(0));
    out_bw.assign(p.bw.empty() ? 0 : static_cast<size_t>(T_ * B * rnn.output_width(1)), T(0));
    fin.assign(static_cast<size_t>(B * rnn.state_width()), T(0));
    f.x_shape[0] = p.time_major ? T_ : B;
    f.x_shape[1] = p.time_major ? B : T_;
    f.x_shape[2] = p.D;
    f.x = x.data();
    if (p.has_seq_len) {
      f.sequence_length = len.data();
      f.sequence_length_size = B;
    }
    f.initial_state = p.has_initial_state ? init.data() : nullptr;
    f.weights = w.data();
    f.outputs = out_fw.data();
    f.outputs_bw = p.bw.empty() ? nullptr : out_bw.data();
    f.final_state = fin.data();
    f.workspace = ws.data();
    f.workspace_bytes = ws.size();
    f.training = true;
    f.reserve = rs.data();
    f.reserve_bytes = rs.size();
    f.host_reserve = hrs.empty() ? nullptr : hrs.data();
    f.host_reserve_bytes = hrs.size();
  }
  bool forward() {
    const dynrnn::Status st = rnn.forward(f);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    return st.is_ok();
  }
  /// grad_inputs, grad_initial_state and grad_weights, as bytes.
  std::vector<uint8_t> backward() {
    std::vector<T> dout_fw(u.dout_fw.begin(), u.dout_fw.end()), dout_bw(u.dout_bw.begin(), u.dout_bw.end());
    std::vector<T> dfin = pack_state<T>(rnn, u.dfinal, p.B);
    std::vector<T> dx(x.size(), T(0)), dinit(fin.size(), T(0)), dw(w.size(), T(0));
    dynrnn::BackwardArgs b;
    std::copy(f.x_shape, f.x_shape + 3, b.x_shape);
    b.x = x.data();
    b.sequence_length = f.sequence_length;
    b.sequence_length_size = f.sequence_length_size;
    b.initial_state = f.initial_state;
    b.weights = w.data();
    b.grad_outputs = dout_fw.empty() ? nullptr : dout_fw.data();
    b.grad_outputs_bw = dout_bw.empty() ? nullptr : dout_bw.data();
    b.grad_final_state = dfin.data();
    b.grad_inputs = dx.data();
    b.grad_initial_state = dinit.data();
    b.grad_weights = dw.data();
    b.workspace = ws.data();
    b.workspace_bytes = ws.size();
    b.reserve = rs.data();
    b.reserve_bytes = rs.size();
    b.host_reserve = hrs.empty() ? nullptr : hrs.data();
    b.host_reserve_bytes = hrs.size();
    const dynrnn::Status st = rnn.backward(b);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    std::vector<uint8_t> all = raw(dx), more = raw(dinit), most = raw(dw);
    all.insert(all.end(), more.begin(), more.end());
    all.insert(all.end(), most.begin(), most.end());
    return all;
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
         " parallel_iterations=" + std::to_string(s.parallel_iterations) +
         " swap=" + std::to_string(s.swap_memory);
}

template <typename T>
void determinism_sweep(uint64_t seed, int cases) {
  const DataType dtype = sizeof(T) == 4 ? DataType::kFloat32 : DataType::kFloat64;
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

TEST(Determinism, Float32RandomConfigurations) { determinism_sweep<float>(0xD0D0, 30); }
TEST(Determinism, Float64RandomConfigurations) { determinism_sweep<double>(0xD0D1, 20); }

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
