#include "host/validate.h"

#include <cstdint>
#include <string>
#include <vector>

#include "host/checked_math.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

Status invalid(const std::string& msg) {
  return Status(StatusCode::kInvalidValue, msg);
}

std::string str(int64_t v) {
  return std::to_string(v);
}

/// A named byte range of a caller buffer, for the aliasing checks.
struct Span {
  const char* name;
  const void* ptr;
  int64_t bytes;
};

bool overlaps(const Span& a, const Span& b) {
  if (!a.ptr || !b.ptr || a.bytes <= 0 || b.bytes <= 0) return false;
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a.ptr), b0 = reinterpret_cast<uintptr_t>(b.ptr);
  return a0 < b0 + static_cast<uintptr_t>(b.bytes) && b0 < a0 + static_cast<uintptr_t>(a.bytes);
}

/// Outputs must not overlap inputs or each other.
Status check_aliasing(const std::vector<Span>& inputs, const std::vector<Span>& outputs) {
  for (size_t i = 0; i < outputs.size(); ++i) {
    for (const Span& in : inputs) {
      if (overlaps(outputs[i], in)) {
        return invalid(std::string(outputs[i].name) + " overlaps " + in.name +
                       "; outputs and scratch buffers must not alias inputs");
      }
    }
    for (size_t j = i + 1; j < outputs.size(); ++j) {
      if (overlaps(outputs[i], outputs[j])) {
        return invalid(std::string(outputs[i].name) + " overlaps " + outputs[j].name +
                       "; output and scratch buffers must be distinct");
      }
    }
  }
  return Status::ok();
}

/// Bytes of `elems_factors` elements of the model's dtype, or an error naming the buffer.
Status bytes_of(const Model& m, const char* name, std::initializer_list<int64_t> factors, int64_t* bytes) {
  int64_t n = 0;
  if (!checked_product(factors, &n) || !checked_mul(n, static_cast<int64_t>(m.elem_bytes), bytes)) {
    return invalid(std::string("the size of ") + name + " overflows 64 bits");
  }
  return Status::ok();
}

/// Bytes of the outputs (or their gradients) of each direction: [T, B, O_d], or with stack_bidirectional
/// one buffer [T, B, O_fw + O_bw] (out_bytes[1] 0).
Status output_bytes(const Model& m, int64_t T, int64_t B, const char* name, int64_t out_bytes[2]) {
  const int64_t O[2] = {m.dirs[0].back().out_width, m.num_directions() == 2 ? m.dirs[1].back().out_width : 0};
  out_bytes[0] = out_bytes[1] = 0;
  if (m.spec.stack_bidirectional) return bytes_of(m, name, {T, B, O[0] + O[1]}, &out_bytes[0]);
  for (int d = 0; d < m.num_directions(); ++d) DYNRNN_TRY(bytes_of(m, name, {T, B, O[d]}, &out_bytes[d]));
  return Status::ok();
}

/// The checks and facts shared by forward and backward.
struct Common {
  const int64_t* x_shape;
  const void* x;
  const int32_t* seq_len;
  int64_t seq_len_size;
  const int32_t* host_seq_len;
  const void* weights;
  const uint64_t* dropout_seed_at;
};

Status check_common(const Model& m, Backend backend, const Common& a, const CallPlan& p, int64_t* loop_bound,
                    std::vector<Span>* inputs) {
  const int64_t T = p.max_time, B = p.batch;
  int64_t x_bytes = 0, w_bytes = 0;
  DYNRNN_TRY(bytes_of(m, "x", {T, B, m.spec.input_size}, &x_bytes));
  DYNRNN_TRY(bytes_of(m, "weights", {m.param_count}, &w_bytes));
  if (!a.x && x_bytes > 0) return invalid("x is null but x_shape has " + str(T * B) + " rows");
  if (!a.weights) return invalid("weights is null; expected param_count() = " + str(m.param_count) + " elements");
  if (a.seq_len) {
    if (a.seq_len_size != B) {
      return invalid("sequence_length_size is " + str(a.seq_len_size) + " but the batch size is " + str(B) +
                     "; sequence_length must be a vector of length batch_size");
    }
  } else if (a.seq_len_size != 0 || a.host_seq_len) {
    return invalid("sequence_length is null but sequence_length_size is " + str(a.seq_len_size) +
                   (a.host_seq_len ? " and host_sequence_length is set" : ""));
  }
  // Lengths visible on the host: range-check (bidirectional) and find the loop bound.
  const int32_t* lengths = host_visible_lengths(backend, a.seq_len, a.host_seq_len);
  *loop_bound = T;
  if (lengths && B > 0) {
    int64_t max_len = INT64_MIN;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = lengths[b];
      if (m.spec.bidirectional() && (len < 0 || len > T)) {
        return invalid("sequence_length[" + str(b) + "] is " + str(len) +
                       "; bidirectional_dynamic_rnn (ReverseSequence) requires 0 <= length <= max_time = " + str(T));
      }
      max_len = len > max_len ? len : max_len;
    }
    // TF's graph-mode loop: min(T, max(1, max(length))) steps; later steps read as zeros.
    const int64_t bound = max_len < 1 ? 1 : max_len;
    *loop_bound = bound < T ? bound : T;
  }
  int64_t len_bytes = 0;
  checked_mul(a.seq_len ? B : 0, 4, &len_bytes);
  // Read by the kernels as a uint64_t; alignment is all the host can check of a backend pointer.
  if (reinterpret_cast<uintptr_t>(a.dropout_seed_at) % alignof(uint64_t) != 0) {
    return invalid("dropout_seed_at is not 8-byte aligned; expected the address of a uint64_t");
  }
  inputs->push_back({"x", a.x, x_bytes});
  inputs->push_back({"weights", a.weights, w_bytes});
  inputs->push_back({"sequence_length", a.seq_len, len_bytes});
  inputs->push_back({"dropout_seed_at", a.dropout_seed_at, a.dropout_seed_at ? 8 : 0});
  return Status::ok();
}

/// The workspace: large enough for the call, and present when it needs any.
Status check_workspace(size_t needed, const void* workspace, size_t bytes) {
  if (bytes < needed) {
    return Status(StatusCode::kWorkspaceTooSmall,
                  "workspace_bytes is " + std::to_string(bytes) + "; this call needs " + std::to_string(needed));
  }
  if (!workspace && needed > 0)
    return invalid("workspace is null; this call needs " + std::to_string(needed) + " bytes");
  return Status::ok();
}

/// swap_memory's host half of the reserve: present and large enough when the plan moves chunks.
Status check_host_reserve(const CallPlan& p, const void* host_reserve, size_t bytes) {
  if (p.host_bytes == 0) return Status::ok();
  if (bytes < p.host_bytes) {
    return Status(StatusCode::kWorkspaceTooSmall, "host_reserve_bytes is " + std::to_string(bytes) +
                                                      "; swap_memory needs " + std::to_string(p.host_bytes) +
                                                      " (get_host_reserve_size)");
  }
  if (!host_reserve) {
    return invalid("host_reserve is null; swap_memory needs " + std::to_string(p.host_bytes) +
                   " bytes of pinned host memory (get_host_reserve_size)");
  }
  return Status::ok();
}

}  // namespace

Status call_shape(const Model& m, const int64_t x_shape[3], CallShape* shape) {
  for (int i = 0; i < 3; ++i) {
    if (x_shape[i] < 0) return invalid("x_shape[" + str(i) + "] is " + str(x_shape[i]) + "; expected >= 0");
  }
  if (x_shape[2] != m.spec.input_size) {
    return invalid("x_shape[2] (the depth of inputs) is " + str(x_shape[2]) + " but spec.input_size is " +
                   str(m.spec.input_size));
  }
  shape->max_time = m.spec.time_major ? x_shape[0] : x_shape[1];
  shape->batch = m.spec.time_major ? x_shape[1] : x_shape[0];
  return Status::ok();
}

Status validate_forward(const Model& m, Backend backend, const ForwardArgs& a, const CallPlan& p, int64_t* loop_bound) {
  const int64_t T = p.max_time, B = p.batch;
  std::vector<Span> inputs;
  DYNRNN_TRY(check_common(
      m, backend,
      {a.x_shape, a.x, a.sequence_length, a.sequence_length_size, a.host_sequence_length, a.weights, a.dropout_seed_at},
      p, loop_bound, &inputs));
  int64_t state_bytes = 0, out_bytes[2] = {0, 0};
  DYNRNN_TRY(bytes_of(m, "the state", {B, m.state_width}, &state_bytes));
  DYNRNN_TRY(output_bytes(m, T, B, "outputs", out_bytes));
  if (!a.outputs && out_bytes[0] > 0)
    return invalid("outputs is null; expected [T, B, O] = " + str(out_bytes[0]) + " bytes");
  if (m.spec.stack_bidirectional) {
    if (a.outputs_bw) {
      return invalid(
          "outputs_bw is set but spec.stack_bidirectional is true; both directions' outputs are "
          "concatenated in outputs");
    }
  } else if (m.spec.bidirectional()) {
    if (!a.outputs_bw && out_bytes[1] > 0) return invalid("outputs_bw is null but the RNN is bidirectional");
  } else if (a.outputs_bw) {
    return invalid("outputs_bw is set but the RNN is unidirectional (spec.cells_bw is empty)");
  }
  const size_t ws_needed = p.workspace_bytes();
  DYNRNN_TRY(check_workspace(ws_needed, a.workspace, a.workspace_bytes));
  if (!a.training && (a.reserve || a.reserve_bytes > 0)) {
    return invalid(
        "reserve is set but training is false; set ForwardArgs::training for a forward that backward follows");
  }
  if (a.training && !a.reserve && p.reserve_bytes > 0) {
    return invalid("reserve is null but training is true; this shape's reserve is " + std::to_string(p.reserve_bytes) +
                   " bytes (get_reserve_size)");
  }
  if (a.training && a.reserve_bytes < p.reserve_bytes) {
    return Status(StatusCode::kWorkspaceTooSmall, "reserve_bytes is " + std::to_string(a.reserve_bytes) +
                                                      "; a training forward of this shape needs " +
                                                      std::to_string(p.reserve_bytes));
  }
  if (a.training) {
    DYNRNN_TRY(check_host_reserve(p, a.host_reserve, a.host_reserve_bytes));
  } else if (a.host_reserve || a.host_reserve_bytes > 0) {
    return invalid("host_reserve is set but training is false; it holds a training forward's activations");
  }
  inputs.push_back({"initial_state", a.initial_state, state_bytes});
  const std::vector<Span> outputs = {{"outputs", a.outputs, out_bytes[0]},
                                     {"outputs_bw", a.outputs_bw, out_bytes[1]},
                                     {"final_state", a.final_state, state_bytes},
                                     {"workspace", a.workspace, static_cast<int64_t>(ws_needed)},
                                     {"reserve", a.reserve, static_cast<int64_t>(p.reserve_bytes)},
                                     {"host_reserve", a.host_reserve, static_cast<int64_t>(p.host_bytes)}};
  return check_aliasing(inputs, outputs);
}

Status validate_backward(const Model& m, Backend backend, const BackwardArgs& a, const CallPlan& p,
                         int64_t* loop_bound) {
  const int64_t T = p.max_time, B = p.batch;
  std::vector<Span> inputs;
  DYNRNN_TRY(check_common(
      m, backend,
      {a.x_shape, a.x, a.sequence_length, a.sequence_length_size, a.host_sequence_length, a.weights, a.dropout_seed_at},
      p, loop_bound, &inputs));
  int64_t state_bytes = 0, out_bytes[2] = {0, 0}, x_bytes = 0, w_bytes = 0;
  DYNRNN_TRY(bytes_of(m, "the state", {B, m.state_width}, &state_bytes));
  DYNRNN_TRY(bytes_of(m, "x", {T, B, m.spec.input_size}, &x_bytes));
  DYNRNN_TRY(bytes_of(m, "weights", {m.param_count}, &w_bytes));
  DYNRNN_TRY(output_bytes(m, T, B, "grad_outputs", out_bytes));
  if (!m.spec.bidirectional() && a.grad_outputs_bw) {
    return invalid("grad_outputs_bw is set but the RNN is unidirectional (spec.cells_bw is empty)");
  }
  if (m.spec.stack_bidirectional && a.grad_outputs_bw) {
    return invalid(
        "grad_outputs_bw is set but spec.stack_bidirectional is true; both directions' output "
        "gradients are concatenated in grad_outputs");
  }
  if (!a.reserve && p.reserve_bytes > 0)
    return invalid("reserve is null; backward needs the reserve of a training forward");
  if (a.reserve_bytes < p.reserve_bytes) {
    return Status(StatusCode::kWorkspaceTooSmall, "reserve_bytes is " + std::to_string(a.reserve_bytes) +
                                                      "; this shape's reserve is " + std::to_string(p.reserve_bytes));
  }
  const size_t ws_needed = p.workspace_bytes();
  DYNRNN_TRY(check_workspace(ws_needed, a.workspace, a.workspace_bytes));
  inputs.push_back({"initial_state", a.initial_state, state_bytes});
  inputs.push_back({"grad_outputs", a.grad_outputs, out_bytes[0]});
  inputs.push_back({"grad_outputs_bw", a.grad_outputs_bw, out_bytes[1]});
  inputs.push_back({"grad_final_state", a.grad_final_state, state_bytes});
  DYNRNN_TRY(check_host_reserve(p, a.host_reserve, a.host_reserve_bytes));
  inputs.push_back({"reserve", a.reserve, static_cast<int64_t>(p.reserve_bytes)});
  inputs.push_back({"host_reserve", a.host_reserve, static_cast<int64_t>(p.host_bytes)});
  const std::vector<Span> outputs = {{"grad_inputs", a.grad_inputs, x_bytes},
                                     {"grad_initial_state", a.grad_initial_state, state_bytes},
                                     {"grad_weights", a.grad_weights, w_bytes},
                                     {"workspace", a.workspace, static_cast<int64_t>(ws_needed)}};
  return check_aliasing(inputs, outputs);
}

}  // namespace dynrnn
