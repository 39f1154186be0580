#include "bench/dynrnn_runner.h"

#include <algorithm>

#include "bench/precision_types.h"
#include "bench/runner_buffers.h"

namespace bench {
namespace {

void check(const dynrnn::Status& st, const char* what) {
  if (!st) throw BenchError(std::string("dynrnn ") + what + ": " + st.to_string());
}

template <typename T>
class DynrnnRunner final : public Runner {
 public:
  DynrnnRunner(const Problem& p, Precision prec, dynrnn::Backend backend, Arena* arena, dynrnn::Stream stream,
               bool training, const SpecEdit& edit, bool host_lengths)
      : p_(p),
        arena_(arena),
        stream_(stream),
        training_(training),
        host_lengths_(host_lengths),
        b_(p, arena, training) {
    // MathMode only matters for float32 (16-bit GEMMs always run on tensor cores, accumulating in float32).
    const dynrnn::MathMode math = prec == Precision::kTf32 ? dynrnn::MathMode::kTF32 : dynrnn::MathMode::kDefault;
    dynrnn::RnnSpec spec = make_spec(p.shape, data_type(prec), math);
    if (edit) edit(spec);
    check(dynrnn::Rnn::create(spec, backend, &rnn_), "Rnn::create");
    const int64_t T_ = p.shape.T, B = p.shape.B;
    check(rnn_->get_workspace_size(T_, B, false, &ws_inference_), "get_workspace_size(inference)");
    if (training) {
      check(rnn_->get_workspace_size(T_, B, true, &ws_training_), "get_workspace_size(training)");
      check(rnn_->get_reserve_size(T_, B, &reserve_bytes_), "get_reserve_size");
      check(rnn_->get_host_reserve_size(T_, B, &host_reserve_bytes_), "get_host_reserve_size");
    }
    workspace_bytes_ = std::max(ws_inference_, ws_training_);
    workspace_ = arena->alloc_bytes(workspace_bytes_);
    if (training) reserve_ = arena->alloc_bytes(reserve_bytes_);
    if (host_reserve_bytes_ > 0) host_reserve_ = arena->alloc_host_bytes(host_reserve_bytes_);
  }

  void run(Mode mode, int set) override {
    const Set& s = b_.set(set);
    if (mode == Mode::kInference) {
      forward(s, false);
    } else if (mode == Mode::kForward) {
      forward(s, true);
    } else if (mode == Mode::kBackward) {
      // The reserve holds set 0's forward (run by the driver before timing); only dy rotates.
      backward(b_.set(0), s);
    } else {
      forward(s, true);
      backward(s, s);
    }
  }

  HostResult fetch(bool grads) override { return b_.fetch(arena_, p_, grads); }

  size_t workspace_bytes() const override { return workspace_bytes_; }
  size_t reserve_bytes() const override { return reserve_bytes_; }
  size_t host_reserve_bytes() const override { return host_reserve_bytes_; }

 private:
  using Set = typename RunnerBuffers<T>::Set;

  template <typename Args>
  void common(Args& a, const Set& s) const {
    a.x_shape[0] = p_.shape.T;
    a.x_shape[1] = p_.shape.B;
    a.x_shape[2] = p_.shape.I;
    a.x = s.x;
    if (b_.lengths) {
      a.sequence_length = b_.lengths;
      a.sequence_length_size = p_.shape.B;
      if (arena_->on_device() && host_lengths_) a.host_sequence_length = p_.lengths.data();
    }
    a.initial_state = nullptr;
    a.weights = b_.weights;
  }

  void forward(const Set& s, bool train) {
    if (train && !training_) throw BenchError("dynrnn runner was set up for inference only");
    dynrnn::ForwardArgs a;
    common(a, s);
    // Stacked (stack_bidirectional): one [T, B, 2H] buffer for both directions, outputs_bw null.
    a.outputs = b_.out_fw;
    a.outputs_bw = b_.out_bw;
    a.final_state = b_.final_state;
    a.workspace = workspace_;
    a.workspace_bytes = workspace_bytes_;
    a.training = train;
    if (train) {
      a.reserve = reserve_;
      a.reserve_bytes = reserve_bytes_;
      a.host_reserve = host_reserve_;
      a.host_reserve_bytes = host_reserve_bytes_;
    }
    check(rnn_->forward(a, stream_), "forward");
  }

  void backward(const Set& fwd, const Set& up) {
    if (!training_) throw BenchError("dynrnn runner was set up for inference only");
    dynrnn::BackwardArgs a;
    common(a, fwd);
    a.grad_outputs = up.dy_fw;  // stacked: both directions joined, grad_outputs_bw null
    a.grad_outputs_bw = up.dy_bw;
    a.grad_final_state = nullptr;
    a.grad_inputs = b_.dx;
    a.grad_initial_state = b_.dinit;
    a.grad_weights = b_.dw;
    a.accumulate_grad_weights = false;
    a.workspace = workspace_;
    a.workspace_bytes = workspace_bytes_;
    a.reserve = reserve_;
    a.reserve_bytes = reserve_bytes_;
    a.host_reserve = host_reserve_;
    a.host_reserve_bytes = host_reserve_bytes_;
    check(rnn_->backward(a, stream_), "backward");
  }

  const Problem& p_;
  Arena* arena_;
  dynrnn::Stream stream_;
  bool training_;
  std::unique_ptr<dynrnn::Rnn> rnn_;
  size_t ws_inference_ = 0, ws_training_ = 0, workspace_bytes_ = 0, reserve_bytes_ = 0, host_reserve_bytes_ = 0;
  void* workspace_ = nullptr;
  void* reserve_ = nullptr;
  void* host_reserve_ = nullptr;
  bool host_lengths_ = true;
  RunnerBuffers<T> b_;
};

}  // namespace

std::unique_ptr<Runner> make_dynrnn_runner(const Problem& p, Precision prec, dynrnn::Backend backend, Arena* arena,
                                           dynrnn::Stream stream, bool training, const SpecEdit& edit,
                                           bool host_lengths) {
  return with_storage_type(prec, [&](auto tag) -> std::unique_ptr<Runner> {
    using T = typename decltype(tag)::type;
    return std::make_unique<DynrnnRunner<T>>(p, prec, backend, arena, stream, training, edit, host_lengths);
  });
}

}  // namespace bench
