// host/validate.h — every check on a forward/backward call, before anything is launched.
#pragma once

#include <cstdint>

#include "dynrnn/rnn.h"
#include "host/model.h"
#include "host/plan.h"

namespace dynrnn {

/// T and B of a call, from x_shape (checked: non-negative, depth equal to spec.input_size).
struct CallShape {
  int64_t max_time = 0;
  int64_t batch = 0;
};

Status call_shape(const Model& model, const int64_t x_shape[3], CallShape* shape);

/// The lengths of a call where the host can read them: kCpu's sequence_length, kCuda's optional
/// host_sequence_length; null when there are none.
inline const int32_t* host_visible_lengths(Backend backend, const int32_t* seq_len, const int32_t* host_seq_len) {
  return backend == Backend::kCpu ? seq_len : host_seq_len;
}

/// Checks pointers, sizes, lengths and aliasing of a forward call whose plan is `plan`; on success
/// sets *loop_bound (the number of steps to run).
Status validate_forward(const Model& model, Backend backend, const ForwardArgs& a, const CallPlan& plan,
                        int64_t* loop_bound);

/// The same for backward (plan made with training = true).
Status validate_backward(const Model& model, Backend backend, const BackwardArgs& a, const CallPlan& plan,
                         int64_t* loop_bound);

}  // namespace dynrnn
