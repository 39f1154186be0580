// host/orchestrator.h — one loop over directions x layers x steps that both executors run.
#pragma once

#include <cstdint>

#include "host/executor.h"
#include "host/model.h"
#include "host/plan.h"

namespace dynrnn {

template <typename T>
struct ForwardCall {
  int64_t loop_bound = 0;  ///< steps to run: T, or min(T, max(1, max length)) when lengths are known on the host
  bool time_major = false;
  const T* x = nullptr;
  const int32_t* seq_len = nullptr;
  const T* initial_state = nullptr;
  const T* weights = nullptr;
  T* outputs[2] = {nullptr, nullptr};
  T* final_state = nullptr;
  char* workspace = nullptr;
  char* reserve = nullptr;  ///< training forward only
};

template <typename T>
struct BackwardCall {
  int64_t loop_bound = 0;
  bool time_major = false;
  const T* x = nullptr;
  const int32_t* seq_len = nullptr;
  const T* weights = nullptr;
  const T* grad_outputs[2] = {nullptr, nullptr};
  const T* grad_final_state = nullptr;
  T* grad_inputs = nullptr;
  T* grad_initial_state = nullptr;
  T* grad_weights = nullptr;
  bool accumulate_grad_weights = false;
  char* workspace = nullptr;
  const char* reserve = nullptr;
};

/// Runs a planned call through an executor. The plan must come from make_plan for the same model,
/// shape and mode; the calls carry buffers that validation has checked.
template <typename T>
class Orchestrator {
 public:
  Orchestrator(const Model& model, const Plan& plan, Executor<T>& ex) : m_(model), p_(plan), ex_(ex) {}

  Status forward(const ForwardCall<T>& c);
  Status backward(const BackwardCall<T>& c);

 private:
  Status forward_step(const ForwardCall<T>& c, const LayerModel& l, const LayerPlan& lp, int64_t s,
                      cell::SeqView<const T> gx, cell::SeqView<const T> gxc, cell::SeqView<T> y);
  Status backward_step(const BackwardCall<T>& c, const LayerModel& l, const LayerPlan& lp, int64_t s,
                       cell::SeqView<const T> dy, T* dh_next, T* dh_prev);

  /// Slice s of a planned region.
  T* at(const Region& r, int64_t s = 0) const {
    if (!r.present()) return nullptr;
    char* base = r.in_reserve ? reserve_ : workspace_;
    return reinterpret_cast<T*>(base + r.offset) + (s % r.slots) * r.slot_elems;
  }
  /// A [T, B, width] (time_major) or [B, T, width] caller buffer.
  template <typename U>
  cell::SeqView<U> user_view(U* data, int64_t width, bool reverse) const {
    if (time_major_) return {data, p_.batch * width, width, reverse};
    return {data, width, p_.max_time * width, reverse};
  }
  /// An internal [T, B, width] buffer in step order.
  template <typename U>
  cell::SeqView<U> step_view(U* data, int64_t width) const {
    return {data, p_.batch * width, width, false};
  }

  const Model& m_;
  const Plan& p_;
  Executor<T>& ex_;
  char* workspace_ = nullptr;
  char* reserve_ = nullptr;
  bool time_major_ = false;
};

extern template class Orchestrator<float>;
extern template class Orchestrator<double>;

}  // namespace dynrnn
