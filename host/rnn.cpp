#include "dynrnn/rnn.h"

#include <exception>
#include <new>
#include <string>

#include "host/cpu_executor.h"
#include "host/cuda_executor.h"
#include "host/model.h"
#include "host/orchestrator.h"
#include "host/plan.h"
#include "host/rnn_impl.h"
#include "host/status_macros.h"
#include "host/validate.h"

namespace dynrnn {

template <typename T, typename F>
Status Rnn::Impl::bracketed(int queues, int events, Stream stream, F&& run) {
  Executor<T>& ex = *executor<T>();
  DYNRNN_TRY(ex.begin(stream, queues, events));
  Status st;
  try {
    st = run(ex);
  } catch (...) {
    (void)ex.end();  // leave the handle usable; guarded() turns the exception into a status
    throw;
  }
  Status end = ex.end();
  return st ? end : st;
}

namespace {

/// Where block b of a call reads its input and writes its outputs (or, backward, reads their
/// gradients and writes its input's): the caller's buffers, or for stack_bidirectional the
/// concatenated outputs of the layer below and of this layer, both directions in one buffer.
template <typename T>
struct BlockIo {
  const T* in;
  T* out[2];
  int64_t out_ld[2];
  T* in_grad;  ///< backward: the input's gradient (grad == true)
};

template <typename T>
BlockIo<T> block_io(const Model& model, const std::vector<Model>& blocks, const CallPlan& plan, size_t b, bool grad,
                    const T* x, T* out, T* out_bw, T* grad_x, char* workspace, char* reserve) {
  const Model& m = blocks[b];
  const int64_t O[2] = {m.dirs[0].back().out_width, m.num_directions() == 2 ? m.dirs[1].back().out_width : 0};
  if (!model.spec.stack_bidirectional) return {x, {out, out_bw}, {O[0], O[1]}, grad_x};
  auto concat = [&](size_t l, bool g) {
    return reinterpret_cast<T*>(plan.concat_at(l, g, workspace, reserve, sizeof(T)));
  };
  BlockIo<T> io;
  io.in = b == 0 ? x : concat(b - 1, false);
  io.out[0] = b + 1 == blocks.size() ? out : concat(b, grad);
  io.out[1] = io.out[0] ? io.out[0] + O[0] : nullptr;
  io.out_ld[0] = io.out_ld[1] = O[0] + O[1];
  io.in_grad = !grad ? nullptr : b == 0 ? grad_x : concat(b - 1, true);
  return io;
}

/// concat_swapped: copies layer l's concatenated outputs from their workspace slot to the host
/// reserve (forward), or back (backward), on `queue`.
template <typename T>
Status move_concat(Executor<T>& ex, const CallPlan& plan, int64_t l, bool to_host, int queue, char* workspace,
                   char* host) {
  const int64_t n = plan.concat_elems(l);
  if (n == 0) return Status::ok();
  T* dev = reinterpret_cast<T*>(plan.concat_at(l, false, workspace, nullptr, sizeof(T)));
  T* h = reinterpret_cast<T*>(plan.concat_host_at(l, host, sizeof(T)));
  DYNRNN_TRY(ex.set_queue(queue));
  DYNRNN_TRY(to_host ? ex.copy_to_host(h, dev, n) : ex.copy_to_device(dev, h, n));
  return ex.set_queue(0);
}

}  // namespace

template <typename T>
Status Rnn::Impl::run_forward(const ForwardArgs& a, const CallPlan& plan, int64_t loop_bound, Stream stream) {
  if (plan.host_bytes > 0) DYNRNN_TRY(executor<T>()->check_host_buffer("host_reserve", a.host_reserve));
  char* workspace = static_cast<char*>(a.workspace);
  char* reserve = static_cast<char*>(a.reserve);
  char* host = static_cast<char*>(a.host_reserve);
  ForwardCall<T> c;
  c.loop_bound = loop_bound;
  c.time_major = model.spec.time_major;
  c.seq_len = a.sequence_length;
  c.host_seq_len = host_visible_lengths(backend, a.sequence_length, a.host_sequence_length);
  c.initial_state = static_cast<const T*>(a.initial_state);
  c.weights = static_cast<const T*>(a.weights);
  c.final_state = static_cast<T*>(a.final_state);
  c.workspace = workspace ? workspace + plan.block_workspace : nullptr;
  c.dropout_seed = a.dropout_seed;
  c.dropout_seed_at = a.dropout_seed_at;
  for (size_t b = 0; b < blocks.size(); ++b) {
    const BlockIo<T> io =
        block_io<T>(model, blocks, plan, b, false, static_cast<const T*>(a.x), static_cast<T*>(a.outputs),
                    static_cast<T*>(a.outputs_bw), nullptr, workspace, reserve);
    c.x = io.in;
    for (int d = 0; d < 2; ++d) {
      c.outputs[d] = io.out[d];
      c.outputs_ld[d] = io.out_ld[d];
    }
    c.reserve = reserve ? reserve + plan.reserve_offsets[b] : nullptr;
    c.host = host ? reinterpret_cast<T*>(host + plan.host_offsets[b]) : nullptr;
    DYNRNN_TRY(bracketed<T>(plan.queues, plan.blocks[b].events, stream, [&](Executor<T>& ex) -> Status {
      // Block b reads layer b - 1's outputs; their copy for backward runs beside it.
      if (plan.concat_swapped && b > 0)
        DYNRNN_TRY(move_concat(ex, plan, b - 1, true, plan.concat_queue, workspace, host));
      return Orchestrator<T>(blocks[b], plan.blocks[b], ex).forward(c);
    }));
  }
  return Status::ok();
}

template <typename T>
Status Rnn::Impl::run_backward(const BackwardArgs& a, const CallPlan& plan, int64_t loop_bound, Stream stream) {
  if (plan.host_bytes > 0) DYNRNN_TRY(executor<T>()->check_host_buffer("host_reserve", a.host_reserve));
  char* workspace = static_cast<char*>(a.workspace);
  char* reserve = static_cast<char*>(const_cast<void*>(a.reserve));  // backward only reads it
  BackwardCall<T> c;
  c.loop_bound = loop_bound;
  c.time_major = model.spec.time_major;
  c.seq_len = a.sequence_length;
  c.host_seq_len = host_visible_lengths(backend, a.sequence_length, a.host_sequence_length);
  c.weights = static_cast<const T*>(a.weights);
  c.grad_final_state = static_cast<const T*>(a.grad_final_state);
  c.grad_initial_state = static_cast<T*>(a.grad_initial_state);
  c.grad_weights = static_cast<T*>(a.grad_weights);
  c.accumulate_grad_weights = a.accumulate_grad_weights;
  c.workspace = workspace ? workspace + plan.block_workspace : nullptr;
  c.dropout_seed = a.dropout_seed;
  c.dropout_seed_at = a.dropout_seed_at;
  char* host = static_cast<char*>(const_cast<void*>(a.host_reserve));  // backward only reads it
  // The top block's input comes back first; each block then brings back the input of the block
  // below it, into the other workspace slot, while it runs.
  const size_t top = blocks.size() - 1;
  if (plan.concat_swapped && top > 0) {
    DYNRNN_TRY(bracketed<T>(1, 0, stream, [&](Executor<T>& ex) {
      return move_concat(ex, plan, static_cast<int64_t>(top) - 1, false, 0, workspace, host);
    }));
  }
  // From the top layer down: block b reads the gradient of its outputs that block b + 1 left.
  for (size_t b = blocks.size(); b-- > 0;) {
    const BlockIo<T> io = block_io<T>(
        model, blocks, plan, b, true, static_cast<const T*>(a.x), const_cast<T*>(static_cast<const T*>(a.grad_outputs)),
        const_cast<T*>(static_cast<const T*>(a.grad_outputs_bw)), static_cast<T*>(a.grad_inputs), workspace, reserve);
    c.x = io.in;
    for (int d = 0; d < 2; ++d) {
      c.grad_outputs[d] = io.out[d];
      c.grad_outputs_ld[d] = io.out_ld[d];
    }
    c.grad_inputs = io.in_grad;
    c.reserve = reserve ? reserve + plan.reserve_offsets[b] : nullptr;
    c.host = host ? reinterpret_cast<T*>(host + plan.host_offsets[b]) : nullptr;
    DYNRNN_TRY(bracketed<T>(plan.queues, plan.blocks[b].events, stream, [&](Executor<T>& ex) -> Status {
      if (plan.concat_swapped && b >= 2) {
        DYNRNN_TRY(move_concat(ex, plan, static_cast<int64_t>(b) - 2, false, plan.concat_queue, workspace, host));
      }
      return Orchestrator<T>(blocks[b], plan.blocks[b], ex).backward(c);
    }));
  }
  return Status::ok();
}

void Rnn::Impl::remember_forward(const void* reserve, int64_t steps) {
  for (auto it = forward_steps.begin(); it != forward_steps.end(); ++it) {
    if (it->first == reserve) {
      forward_steps.erase(it);
      break;
    }
  }
  if (forward_steps.size() == kRememberedReserves) forward_steps.erase(forward_steps.begin());
  forward_steps.emplace_back(reserve, steps);
}

Status Rnn::Impl::check_backward_steps(const void* reserve, int64_t steps) const {
  for (const auto& [r, forward] : forward_steps) {
    if (r != reserve || forward == steps) continue;
    return Status(StatusCode::kInvalidValue,
                  "sequence_length / host_sequence_length: this backward runs " + std::to_string(steps) +
                      " steps but the training forward that filled this reserve ran " + std::to_string(forward) +
                      "; pass the forward's lengths unchanged, and host_sequence_length to both calls or to neither");
  }
  return Status::ok();
}

namespace {

/// Runs an entry point's body; host allocation failures (the library allocates only small host
/// objects: names, tables, plans) become a status instead of an exception crossing the API.
template <typename F>
Status guarded(const char* entry, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kAllocationFailed, std::string(entry) + ": out of host memory");
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, std::string(entry) + ": " + e.what());
  }
}

}  // namespace

Rnn::Rnn(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Rnn::~Rnn() = default;

Status Rnn::create(const RnnSpec& spec, Backend backend, std::unique_ptr<Rnn>* out) {
  return guarded("Rnn::create", [&]() -> Status {
    if (!out)
      return Status(StatusCode::kInvalidValue, "out is null; expected a pointer to the std::unique_ptr<Rnn> to fill");
    auto impl = std::make_unique<Impl>();
    DYNRNN_TRY(build_model(spec, &impl->model));
    impl->blocks = call_blocks(impl->model);
    const int be = static_cast<int>(backend);
    if (be < 0 || be > static_cast<int>(Backend::kCuda)) {
      return Status(StatusCode::kInvalidValue, "backend is " + std::to_string(be) + "; expected kCpu (0) or kCuda (1)");
    }
    impl->backend = backend;
    impl->forward_steps.reserve(Impl::kRememberedReserves);  // calls never allocate
    const PoolSizes pools = pool_sizes(impl->model);
    DYNRNN_TRY(dispatch_dtype(spec.dtype, [&](auto tag) -> Status {
      using T = typename decltype(tag)::type;
      std::unique_ptr<Executor<T>>& ex = impl->executor<T>();
      if (backend == Backend::kCpu) {
        ex = make_cpu_executor<T>();
      } else {
        DYNRNN_TRY(make_cuda_executor<T>(spec.math, spec.algorithm, &ex));
      }
      return ex->prepare(pools.queues, pools.events);
    }));
    out->reset(new Rnn(std::move(impl)));
    return Status::ok();
  });
}

const RnnSpec& Rnn::spec() const {
  return impl_->model.spec;
}
Backend Rnn::backend() const {
  return impl_->backend;
}
const std::vector<ParamInfo>& Rnn::params() const {
  return impl_->model.params;
}
int64_t Rnn::param_count() const {
  return impl_->model.param_count;
}
const std::vector<StateLeaf>& Rnn::state_layout() const {
  return impl_->model.state;
}
int64_t Rnn::state_width() const {
  return impl_->model.state_width;
}

const ParamInfo* Rnn::find_param(const std::string& name) const {
  for (const ParamInfo& p : impl_->model.params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

int64_t Rnn::output_width(int direction) const {
  const Model& m = impl_->model;
  if (direction < 0 || direction >= m.num_directions()) return 0;
  return m.dirs[direction].back().out_width;
}

namespace {

/// The plan a size query describes, after checking its arguments.
Status plan_for_query(const Rnn::Impl& impl, int64_t max_time, int64_t batch, bool training, const size_t* bytes,
                      CallPlan* plan) {
  if (!bytes) return Status(StatusCode::kInvalidValue, "bytes is null; expected a pointer to the size_t to fill");
  if (max_time < 0 || batch < 0) {
    return Status(StatusCode::kInvalidValue, "max_time is " + std::to_string(max_time) + " and batch is " +
                                                 std::to_string(batch) + "; expected both >= 0");
  }
  return make_call_plan(impl.model, impl.blocks, max_time, batch, training, plan);
}

}  // namespace

Status Rnn::get_workspace_size(int64_t max_time, int64_t batch, bool training, size_t* bytes) const {
  return guarded("Rnn::get_workspace_size", [&]() -> Status {
    CallPlan p;
    DYNRNN_TRY(plan_for_query(*impl_, max_time, batch, training, bytes, &p));
    *bytes = p.workspace_bytes();
    return Status::ok();
  });
}

Status Rnn::get_reserve_size(int64_t max_time, int64_t batch, size_t* bytes) const {
  return guarded("Rnn::get_reserve_size", [&]() -> Status {
    CallPlan p;
    DYNRNN_TRY(plan_for_query(*impl_, max_time, batch, true, bytes, &p));
    *bytes = p.reserve_bytes;
    return Status::ok();
  });
}

Status Rnn::get_host_reserve_size(int64_t max_time, int64_t batch, size_t* bytes) const {
  return guarded("Rnn::get_host_reserve_size", [&]() -> Status {
    CallPlan p;
    DYNRNN_TRY(plan_for_query(*impl_, max_time, batch, true, bytes, &p));
    *bytes = p.host_bytes;
    return Status::ok();
  });
}

Status Rnn::forward(const ForwardArgs& a, Stream stream) {
  return guarded("Rnn::forward", [&]() -> Status {
    CallShape shape;
    DYNRNN_TRY(call_shape(impl_->model, a.x_shape, &shape));
    CallPlan plan;
    DYNRNN_TRY(make_call_plan(impl_->model, impl_->blocks, shape.max_time, shape.batch, a.training, &plan));
    int64_t loop_bound = 0;
    DYNRNN_TRY(validate_forward(impl_->model, impl_->backend, a, plan, &loop_bound));
    DYNRNN_TRY(dispatch_dtype(impl_->model.spec.dtype, [&](auto tag) {
      return impl_->run_forward<typename decltype(tag)::type>(a, plan, loop_bound, stream);
    }));
    if (a.training && a.reserve) impl_->remember_forward(a.reserve, loop_bound);
    return Status::ok();
  });
}

Status Rnn::backward(const BackwardArgs& a, Stream stream) {
  return guarded("Rnn::backward", [&]() -> Status {
    CallShape shape;
    DYNRNN_TRY(call_shape(impl_->model, a.x_shape, &shape));
    CallPlan plan;
    DYNRNN_TRY(make_call_plan(impl_->model, impl_->blocks, shape.max_time, shape.batch, true, &plan));
    int64_t loop_bound = 0;
    DYNRNN_TRY(validate_backward(impl_->model, impl_->backend, a, plan, &loop_bound));
    DYNRNN_TRY(impl_->check_backward_steps(a.reserve, loop_bound));
    return dispatch_dtype(impl_->model.spec.dtype, [&](auto tag) {
      return impl_->run_backward<typename decltype(tag)::type>(a, plan, loop_bound, stream);
    });
  });
}

}  // namespace dynrnn
