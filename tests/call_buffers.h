// The host buffers of one forward (+ backward) call on the CPU backend, and the ForwardArgs /
// BackwardArgs that point into them, for tests that build such calls by hand (determinism,
// concurrency, NaN/Inf, fault injection, messages, the library adapter).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dynrnn/rnn.h"
#include "library_adapter.h"
#include "reference/reference.h"

namespace testing_support {

/// The elements of `v` converted to T.
template <typename T>
std::vector<T> cast(const std::vector<double>& v) {
  return std::vector<T>(v.begin(), v.end());
}

/// The elements of `v` converted to double.
template <typename T>
std::vector<double> widen(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

/// Sets every byte of `v` to `pattern` (0xFF: NaN in both float types; 0x00: zeros).
template <typename V>
void fill_bytes(std::vector<V>& v, uint8_t pattern) {
  if (!v.empty()) std::memset(v.data(), pattern, v.size() * sizeof(V));
}

/// Appends the bytes of `v` to `out`.
template <typename V>
void append_bytes(std::vector<uint8_t>& out, const std::vector<V>& v) {
  const size_t at = out.size();
  out.resize(at + v.size() * sizeof(V));
  if (!v.empty()) std::memcpy(out.data() + at, v.data(), v.size() * sizeof(V));
}

/// The flat state layout split into named leaves (the inverse of pack_state).
inline ref::Named unpack_state(const dynrnn::Rnn& rnn, const std::vector<double>& flat, int64_t B) {
  ref::Named out;
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    auto begin = flat.begin() + B * leaf.column_offset;
    out[leaf.name] = std::vector<double>(begin, begin + B * leaf.width);
  }
  return out;
}

/// The column blocks a (width wa) and b (width wb) of `rows` rows side by side, as
/// stack_bidirectional's outputs hold both directions; an empty block is zeros, and two empty
/// blocks give an empty result.
template <typename T>
std::vector<T> concat_columns(const std::vector<double>& a, int64_t wa, const std::vector<double>& b, int64_t wb,
                              int64_t rows) {
  if (a.empty() && b.empty()) return {};
  std::vector<T> out(static_cast<size_t>(rows * (wa + wb)), T(0));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < wa && !a.empty(); ++j) out[r * (wa + wb) + j] = static_cast<T>(a[r * wa + j]);
    for (int64_t j = 0; j < wb && !b.empty(); ++j) out[r * (wa + wb) + wa + j] = static_cast<T>(b[r * wb + j]);
  }
  return out;
}

/// Columns [first, first + width) of a buffer of rows of `ld` elements.
inline std::vector<double> column_block(const std::vector<double>& v, int64_t ld, int64_t first, int64_t width) {
  const int64_t rows = ld > 0 ? static_cast<int64_t>(v.size()) / ld : 0;
  std::vector<double> out(static_cast<size_t>(rows * width));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < width; ++j) out[r * width + j] = v[r * ld + first + j];
  }
  return out;
}

/// Packs named state leaves into the flat state layout (missing leaves are zero).
template <typename T>
std::vector<T> pack_state(const dynrnn::Rnn& rnn, const ref::Named& leaves, int64_t B) {
  std::vector<T> flat(static_cast<size_t>(B * rnn.state_width()), T(0));
  for (const dynrnn::StateLeaf& leaf : rnn.state_layout()) {
    auto it = leaves.find(leaf.name);
    if (it == leaves.end()) continue;
    if (static_cast<int64_t>(it->second.size()) != B * leaf.width) {
      ADD_FAILURE() << leaf.name << " has " << it->second.size() << " values; expected B * width = " << B * leaf.width;
      continue;
    }
    for (size_t i = 0; i < it->second.size(); ++i) flat[B * leaf.column_offset + i] = static_cast<T>(it->second[i]);
  }
  return flat;
}

/// Every host buffer of a forward + backward of T_ steps of a batch of B on `rnn`, in dtype T.
///
/// The constructor sizes the results (out, out_bw, fin, dx, dinit, dw: zeros) and the scratch
/// buffers (ws, rs, hrs: zeros, sized by the size queries; ws for a training call unless `training`
/// is false). The inputs (x, w, init, len, dout, dout_bw, dfin) start empty: the caller fills them
/// (set_problem / set_upstream, or by hand) before taking the arguments. An empty optional input is
/// passed as null (no initial state, no sequence_length, zero upstream gradients).
/// forward_args() / backward_args() point into the buffers as they are when called; resizing a
/// buffer afterwards invalidates them.
template <typename T>
struct CallBuffers {
  int64_t T_ = 0, B = 0, D = 0;
  bool time_major = false;
  bool bidirectional = false;
  bool stacked = false;                            ///< stack_bidirectional: out (dout) holds both directions' columns
  bool bi = false;                                 ///< bidirectional, not stacked: out_bw is allocated and passed
  int64_t out_width = 0;                           ///< of out and dout
  std::vector<T> x, w, init, dout, dout_bw, dfin;  ///< inputs
  std::vector<int32_t> len;                        ///< sequence_length (empty: none)
  std::vector<T> out, out_bw, fin, dx, dinit, dw;  ///< results
  std::vector<char> ws, rs, hrs;                   ///< workspace, reserve, host_reserve
  std::string error;                               ///< the first failed size query ("" if none)
  uint64_t dropout_seed = 0;                       ///< ForwardArgs::dropout_seed (set_problem: the problem's)

  CallBuffers(const dynrnn::Rnn& rnn, int64_t max_time, int64_t batch, bool time_major_layout, bool training = true)
      : T_(max_time),
        B(batch),
        D(rnn.spec().input_size),
        time_major(time_major_layout),
        bidirectional(rnn.spec().bidirectional()),
        stacked(rnn.spec().stack_bidirectional),
        bi(bidirectional && !stacked),
        out_width(rnn.output_width(0) + (stacked ? rnn.output_width(1) : 0)) {
    size_t ws_bytes = 0, rs_bytes = 0, hrs_bytes = 0;
    if (!rnn.get_workspace_size(T_, B, training, &ws_bytes).is_ok() ||
        !rnn.get_reserve_size(T_, B, &rs_bytes).is_ok()) {
      error = "size query failed";
    } else if (!rnn.get_host_reserve_size(T_, B, &hrs_bytes).is_ok()) {
      error = "get_host_reserve_size failed";
    }
    ws.assign(ws_bytes, 0);
    rs.assign(rs_bytes, 0);
    hrs.assign(hrs_bytes, 0);
    out.assign(static_cast<size_t>(T_ * B * out_width), T(0));
    out_bw.assign(bi ? static_cast<size_t>(T_ * B * rnn.output_width(1)) : 0, T(0));
    fin.assign(static_cast<size_t>(B * rnn.state_width()), T(0));
    dx.assign(static_cast<size_t>(T_ * B * D), T(0));
    dinit.assign(fin.size(), T(0));
    dw.assign(static_cast<size_t>(rnn.param_count()), T(0));
  }

  bool ok() const { return error.empty(); }

  /// x, weights, initial state (if the problem has one), sequence_length (if it has them) and dropout seed of `p`.
  void set_problem(const dynrnn::Rnn& rnn, const ref::Problem& p) {
    x.assign(p.x.begin(), p.x.end());
    const std::vector<double> wd = flat_weights(rnn, p);
    w.assign(wd.begin(), wd.end());
    if (p.has_initial_state) init = pack_state<T>(rnn, p.init, B);
    if (p.has_seq_len) len.assign(p.seq_len.begin(), p.seq_len.end());
    dropout_seed = p.dropout_seed;
  }
  /// The upstream gradients of `u`.
  void set_upstream(const dynrnn::Rnn& rnn, const ref::Upstream& u) {
    if (stacked) {
      dout = concat_columns<T>(u.dout_fw, rnn.output_width(0), u.dout_bw, rnn.output_width(1), T_ * B);
    } else {
      dout.assign(u.dout_fw.begin(), u.dout_fw.end());
      dout_bw.assign(u.dout_bw.begin(), u.dout_bw.end());
    }
    dfin = pack_state<T>(rnn, u.dfinal, B);
  }

  /// A fixed problem of smooth values (sines with a seed per buffer), a full upstream, and lengths
  /// T, 2, 0 / 4 (bidirectional / not) for the first three rows (B >= 3).
  void set_sine_problem(const dynrnn::Rnn& rnn) {
    auto fill = [](std::vector<T>& v, int64_t n, double scale, int seed) {
      v.resize(static_cast<size_t>(n));
      for (size_t i = 0; i < v.size(); ++i)
        v[i] = static_cast<T>(scale * std::sin(0.7 * static_cast<double>(i) + seed));
    };
    fill(x, T_ * B * D, 1.0, 1);
    fill(w, rnn.param_count(), 0.5, 2);
    fill(init, B * rnn.state_width(), 0.5, 3);
    fill(dout, T_ * B * out_width, 1.0, 4);
    fill(dout_bw, bi ? T_ * B * rnn.output_width(1) : 0, 1.0, 5);
    fill(dfin, B * rnn.state_width(), 1.0, 6);
    len.assign(static_cast<size_t>(B), static_cast<int32_t>(T_));
    len[1] = 2;
    len[2] = bidirectional ? 0 : 4;
  }

  /// Every result (out, out_bw, fin, dx, dinit, dw) set to `v`.
  void fill_results(T v) {
    for (std::vector<T>* r : {&out, &out_bw, &fin, &dx, &dinit, &dw}) r->assign(r->size(), v);
  }
  /// Every result byte set to `pattern`.
  void fill_results_bytes(uint8_t pattern) {
    for (std::vector<T>* r : {&out, &out_bw, &fin, &dx, &dinit, &dw}) fill_bytes(*r, pattern);
  }
  /// The gradients only (dx, dinit, dw), every byte set to `pattern`.
  void fill_gradient_bytes(uint8_t pattern) {
    for (std::vector<T>* r : {&dx, &dinit, &dw}) fill_bytes(*r, pattern);
  }

  /// Every result byte, in the order out, out_bw, fin, dx, dinit, dw.
  std::vector<uint8_t> results() const {
    std::vector<uint8_t> r;
    for (const std::vector<T>* v : {&out, &out_bw, &fin, &dx, &dinit, &dw}) append_bytes(r, *v);
    return r;
  }
  /// The gradient bytes, in the order dx, dinit, dw.
  std::vector<uint8_t> gradients() const {
    std::vector<uint8_t> r;
    for (const std::vector<T>* v : {&dx, &dinit, &dw}) append_bytes(r, *v);
    return r;
  }

  /// A forward over these buffers; a training one (with reserve and host_reserve) unless told not.
  dynrnn::ForwardArgs forward_args(bool training = true) {
    dynrnn::ForwardArgs f;
    f.x_shape[0] = time_major ? T_ : B;
    f.x_shape[1] = time_major ? B : T_;
    f.x_shape[2] = D;
    f.x = x.data();
    if (!len.empty()) {
      f.sequence_length = len.data();
      f.sequence_length_size = B;
    }
    f.initial_state = init.empty() ? nullptr : init.data();
    f.weights = w.data();
    f.outputs = out.data();
    f.outputs_bw = bi ? out_bw.data() : nullptr;
    f.final_state = fin.data();
    f.workspace = ws.data();
    f.workspace_bytes = ws.size();
    f.training = training;
    f.dropout_seed = dropout_seed;  // backward_args(): BackwardArgs::of carries it
    if (training) {
      f.reserve = rs.data();
      f.reserve_bytes = rs.size();
      f.host_reserve = hrs.empty() ? nullptr : hrs.data();
      f.host_reserve_bytes = hrs.size();
    }
    return f;
  }

  /// The backward of the training forward_args() over these buffers.
  dynrnn::BackwardArgs backward_args() {
    dynrnn::BackwardArgs b = dynrnn::BackwardArgs::of(forward_args());
    b.grad_outputs = dout.empty() ? nullptr : dout.data();
    b.grad_outputs_bw = dout_bw.empty() ? nullptr : dout_bw.data();
    b.grad_final_state = dfin.empty() ? nullptr : dfin.data();
    b.grad_inputs = dx.data();
    b.grad_initial_state = dinit.data();
    b.grad_weights = dw.data();
    return b;
  }
};

}  // namespace testing_support
