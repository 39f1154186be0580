// host/rnn_impl.h — what an Rnn handle holds (internal; tests reach it through RnnTestAccess).
#pragma once

#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "dynrnn/rnn.h"
#include "host/element_types.h"
#include "host/executor.h"
#include "host/model.h"
#include "host/plan.h"

namespace dynrnn {

struct Rnn::Impl {
  Model model;
  std::vector<Model> blocks;  ///< call_blocks(model): what each call runs, one after another
  Backend backend = Backend::kCpu;
  /// The executor of the handle's element type (the others stay null).
  std::tuple<std::unique_ptr<Executor<float>>, std::unique_ptr<Executor<double>>, std::unique_ptr<Executor<bfloat16>>,
             std::unique_ptr<Executor<float16>>>
      executors;

  /// Steps run by the latest training forwards, by reserve (most recent last, at most
  /// kRememberedReserves): a backward must run as many steps as the forward that filled its reserve,
  /// or it would read activations that forward never wrote.
  static constexpr size_t kRememberedReserves = 64;
  std::vector<std::pair<const void*, int64_t>> forward_steps;
  void remember_forward(const void* reserve, int64_t steps);
  Status check_backward_steps(const void* reserve, int64_t steps) const;

  template <typename T>
  std::unique_ptr<Executor<T>>& executor() {
    return std::get<std::unique_ptr<Executor<T>>>(executors);
  }

  /// Runs run(executor) — an orchestrator call of one block, a copy — between the executor's begin
  /// and end (end also when it throws): the caller's stream waits for it, and it for the caller's
  /// earlier work.
  template <typename T, typename F>
  Status bracketed(int queues, int events, Stream stream, F&& run);
  /// Runs the call's blocks one after another (checked arguments).
  template <typename T>
  Status run_forward(const ForwardArgs& a, const CallPlan& plan, int64_t loop_bound, Stream stream);
  template <typename T>
  Status run_backward(const BackwardArgs& a, const CallPlan& plan, int64_t loop_bound, Stream stream);
};

/// Test-only access to a handle's internals (fault injection, schedule checks). Not installed.
struct RnnTestAccess {
  static Rnn::Impl& impl(Rnn& rnn) { return *rnn.impl_; }
};

}  // namespace dynrnn
