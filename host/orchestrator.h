// host/orchestrator.h — one schedule over directions x layers x chunks x steps that every executor
// runs. Work is issued in an order in which every dependency points backwards (so an executor that
// runs it in issue order is correct), and each cross-queue dependency is also fenced with an event
// (so an executor that runs queues concurrently is correct too):
//  * a layer's chunk c waits for chunk c of the layer below (forward) or above (backward): the
//    layers of a stack run as a wavefront; the two directions of a bidirectional RNN are independent;
//  * a ring slot is reused only after the layer above has read it and, with swap_memory, after its
//    chunk reached the host; backward prefetches swapped chunks back ahead of use.
#pragma once

#include <cstdint>
#include <type_traits>
#include <vector>

#include "host/element_types.h"
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
  /// The same lengths where the host can read them (kCpu's seq_len, or host_sequence_length), else
  /// null. With them, the batch runs sorted by length and each step's recurrent GEMMs cover only its
  /// running rows.
  const int32_t* host_seq_len = nullptr;
  const T* initial_state = nullptr;
  const T* weights = nullptr;
  T* outputs[2] = {nullptr, nullptr};
  /// Elements between consecutive rows of outputs[d]: its width, or with stack_bidirectional the
  /// width of both directions' outputs, which share one buffer.
  int64_t outputs_ld[2] = {0, 0};
  T* final_state = nullptr;
  char* workspace = nullptr;
  char* reserve = nullptr;  ///< training forward only
  T* host = nullptr;        ///< swap_memory: the executor's pinned host buffer (plan.host_bytes)
  uint64_t dropout_seed = 0;
  const uint64_t* dropout_seed_at = nullptr;
};

template <typename T>
struct BackwardCall {
  int64_t loop_bound = 0;
  bool time_major = false;
  const T* x = nullptr;
  const int32_t* seq_len = nullptr;
  const int32_t* host_seq_len = nullptr;
  const T* weights = nullptr;
  const T* grad_outputs[2] = {nullptr, nullptr};
  int64_t grad_outputs_ld[2] = {0, 0};  ///< as ForwardCall::outputs_ld
  const T* grad_final_state = nullptr;
  T* grad_inputs = nullptr;
  T* grad_initial_state = nullptr;
  T* grad_weights = nullptr;
  bool accumulate_grad_weights = false;
  char* workspace = nullptr;
  const char* reserve = nullptr;
  T* host = nullptr;
  uint64_t dropout_seed = 0;
  const uint64_t* dropout_seed_at = nullptr;
};

/// Runs a planned call through an executor. The plan must come from make_plan for the same model,
/// shape and mode; the calls carry buffers that validation has checked.
template <typename T>
class Orchestrator {
  using A = compute_t<T>;

 public:
  Orchestrator(const Model& model, const Plan& plan, Executor<T>& ex) : m_(model), p_(plan), ex_(ex) {}

  Status forward(const ForwardCall<T>& c);
  Status backward(const BackwardCall<T>& c);

 private:
  /// The fields of one chunk slot (null where absent).
  struct Slot {
    T* base;
    T* hs;
    A* cs;  ///< LSTM c in the compute type (Model::c_elems)
    T* z;
    T* zc;
    T* rh;
    T* mraw;
    T* mp;
    T* ys;  ///< the layer's output for the layer above when it is not h (residual, output dropout)
  };

  Status forward_chunk(const ForwardCall<T>& c, const LayerModel& l, int64_t chunk);
  /// Steps s0 .. s0 + n - 1 of a layer's chunk (slot) after its input projection (gx, gxc): their
  /// recurrent GEMMs and cell stages, writing the top layer's outputs to y.
  RecurrentSteps<T> recurrent_steps(const ForwardCall<T>& c, const LayerModel& l, const Slot& slot, int64_t s0,
                                    int64_t n, cell::SeqView<const T> gx, cell::SeqView<const T> gxc,
                                    cell::SeqView<T> y) const;
  Status backward_chunk(const BackwardCall<T>& c, const LayerModel& l, int64_t chunk);
  /// Steps s0 + n - 1 down to s0 of a layer's backward chunk (slot), whose output gradients are dy:
  /// their cell stages and recurrent-gradient GEMMs, leaving dz (and dzc, dmp, dpeep) per step.
  RecurrentBackwardSteps<T> recurrent_backward_steps(const BackwardCall<T>& c, const LayerModel& l, const Slot& slot,
                                                     int64_t s0, int64_t n, cell::SeqView<const T> dy) const;
  /// Steps s0 .. s0 + n - 1 of this call, with its running rows.
  ChunkSteps chunk_steps(int64_t s0, int64_t n) const { return {p_.batch, n, s0, &running_}; }
  Status backward_layer0_inputs(const BackwardCall<T>& c, const LayerModel& l);
  /// Rounds a 16-bit layer's float32 weight-gradient sums into grad_weights (adding with accumulate).
  Status finish_grad_weights(const BackwardCall<T>& c, const LayerModel& l);
  /// Where a layer's weight gradients are summed: g[0] is its first parameter. For the 16-bit types
  /// the plan's compute_t<T> accumulator (which never holds the caller's values), else grad_weights.
  template <typename F>
  Status with_grad_weights(const BackwardCall<T>& c, const LayerModel& l, F&& f) {
    if (!c.grad_weights) return Status::ok();
    if (plan(l).dw.present()) return f(wide(at(plan(l).dw)), false);
    return f(c.grad_weights + l.param_begin, c.accumulate_grad_weights);
  }

  /// Chunk `chunk` of a layer: kept fields in its ring slot, the others in forward (or, for
  /// backward, recompute) scratch.
  Slot slot(const LayerModel& l, int64_t chunk, bool backward = false) const;
  /// The outputs of a layer's chunk in step order, [n, B, O]: what the layer above reads (h, or with
  /// ResidualWrapper input + h, with DropoutWrapper h through the output mask; not the state h when
  /// that is dropped).
  const T* layer_output(const LayerModel& l, int64_t chunk, bool backward) const {
    const Slot s = slot(l, chunk, backward);
    return l.output_is_h() ? entry(s.hs, 1, l.out_width) : s.ys;
  }
  /// The wrappers' part of a forward chunk after its steps: the output mask (DropoutWrapper), then the
  /// chunk's input `in` added (ResidualWrapper), into ys, or in place into the caller's outputs y at
  /// running rows for the top layer.
  Status wrap_outputs(const LayerModel& l, const Slot& slot, int64_t s0, int64_t n, const T* in, cell::SeqView<T> y);
  /// ResidualWrapper's backward: adds the outputs' gradient dy to the chunk's input gradient din.
  Status residual_backward(const LayerModel& l, int64_t s0, int64_t n, cell::SeqView<const T> dy, T* din);
  /// DropoutWrapper: steps s0 .. s0 + n - 1 of src through a layer's input or output masks into dst
  /// (forward values, or gradients). `caller` marks the caller's outputs or their gradients: rows
  /// past their length become 0 there.
  Status apply_dropout(const LayerModel& l, dropout::Site site, cell::SeqView<const T> src, cell::SeqView<T> dst,
                       int64_t s0, int64_t n, int64_t width, bool caller, bool gradient);
  /// This call's masks of a layer's DropoutWrapper site.
  dropout::Mask<A> mask(const LayerModel& l, dropout::Site site) const;
  /// A layer's state mask for its cell stages (off without state_keep_prob < 1).
  cell::StateDropout<A> state_dropout(const LayerModel& l) const;
  /// Copies steps [first_step, first_step + steps) between a caller sequence and a step-ordered chunk.
  Status copy_steps(cell::SeqView<const T> src, cell::SeqView<T> dst, int64_t first_step, int64_t steps, int64_t width);
  /// Time positions [t0, t1) of a caller sequence of the given width, as a 2D block of elements.
  struct Block {
    int64_t offset, rows, cols, ld;
  };
  Block positions(int64_t t0, int64_t t1, int64_t width) const {
    const int64_t B = p_.batch, T_ = p_.max_time;
    if (time_major_) return {t0 * B * width, (t1 - t0) * B, width, width};
    return {t0 * width, B, (t1 - t0) * width, T_ * width};
  }
  /// Copies layer l's leaves of a flat state buffer (h, and c for LSTMs) into another; src null: zeros.
  Status copy_state(const LayerModel& l, T* dst, const T* src);
  Status regenerate(const BackwardCall<T>& c, const LayerModel& l, int64_t chunk, const Slot& S, const T* in);
  /// Entry e of a per-step slot field of the given width.
  template <typename U>
  U* entry(U* field, int64_t e, int64_t width) const {
    return field ? field + e * p_.batch * width : nullptr;
  }
  /// A buffer of running sums (c, dh, dc: a slot field or region) viewed in the compute type it holds.
  static A* wide(T* p) { return reinterpret_cast<A*>(p); }
  /// B x width states (or state gradients) of the caller, in its element type and batch order, into
  /// the compute type and the batch order of the run.
  Status widen(A* dst, const T* src, int64_t width) {
    if (std::is_same<A, T>::value && !rows_) return ex_.copy(reinterpret_cast<T*>(dst), src, p_.batch * width);
    cell::WidenParams<T> w;
    w.batch = p_.batch;
    w.cols = width;
    w.src = src;
    w.dst = dst;
    w.src_rows = rows_;
    return ex_.pointwise(w);
  }
  /// And back, except on the rows that run no step: they take `through` (the value the state started
  /// from, or null for zeros) bit for bit, NaN payloads too.
  Status narrow_state(T* dst, const A* src, const T* through, int64_t width);
  /// B x width states of the caller into the batch order of the run (to_caller false), or back.
  Status reorder_state(T* dst, const T* src, int64_t width, bool to_caller) {
    if (!rows_) return ex_.copy(dst, src, p_.batch * width);
    cell::PermuteRowsParams<T> p;
    p.batch = p_.batch;
    p.cols = width;
    p.src = src;
    p.dst = dst;
    (to_caller ? p.dst_rows : p.src_rows) = rows_;
    return ex_.pointwise(p);
  }
  /// Runs the batch sorted by length when that shrinks the steps' GEMMs: with its lengths on the host,
  /// not in that order already. Sets running_, and rows_ and seq_len_ (the lengths of the run's rows).
  Status order_batch(const int32_t* seq_len, const int32_t* host_seq_len, const Region& rows, const Region& sorted_len);
  /// Whether layer l gathers its chunk of inputs (and scatters their gradient) instead of reading the
  /// caller's x in place: it is layer 0, and x is not in step and run order (batch-major x of one step,
  /// [B, 1, D], is: step-at-a-time callers save a gather and a scatter per call).
  bool gathers_input(const LayerModel& l) const {
    const bool step_order = time_major_ || p_.max_time == 1;
    return l.layer == 0 && (!step_order || l.direction == 1 || rows_ != nullptr);
  }
  /// B x width running sums within the compute type.
  Status copy_wide(A* dst, const A* src, int64_t H) {
    return ex_.copy(reinterpret_cast<T*>(dst), reinterpret_cast<const T*>(src), p_.batch * H * m_.c_elems);
  }
  Status zero_wide(A* dst, int64_t H) {
    return ex_.fill_zero(reinterpret_cast<T*>(dst), 1, p_.batch * H * m_.c_elems, 0);
  }
  const LayerPlan& plan(const LayerModel& l) const { return p_.dirs[l.direction][l.layer]; }
  const LayerModel* above(const LayerModel& l) const {
    const auto& layers = m_.dirs[l.direction];
    return l.layer + 1 < static_cast<int>(layers.size()) ? &layers[l.layer + 1] : nullptr;
  }
  const LayerModel* below(const LayerModel& l) const {
    return l.layer > 0 ? &m_.dirs[l.direction][l.layer - 1] : nullptr;
  }
  /// Pinned-host copy of chunk c of a layer (swap_memory).
  T* host_chunk(const LayerModel& l, T* host, int64_t chunk) const {
    return host + plan(l).host_offset / sizeof(T) + chunk * plan(l).slot.elems;
  }
  /// Slice s of a planned region.
  T* at(const Region& r, int64_t s = 0) const {
    if (!r.present()) return nullptr;
    char* base = r.in_reserve ? reserve_ : workspace_;
    return reinterpret_cast<T*>(base + r.offset) + (s % r.slots) * r.slot_elems;
  }
  /// A [T, B, width] (time_major) or [B, T, width] caller buffer, in the batch order of the run, whose
  /// rows are ld >= width elements apart (ld 0: width).
  template <typename U>
  cell::SeqView<U> user_view(U* data, int64_t width, bool reverse, int64_t ld = 0) const {
    if (!data) return {};
    if (ld == 0) ld = width;
    if (time_major_) return {data, p_.batch * ld, ld, reverse, 0, rows_};
    return {data, ld, p_.max_time * ld, reverse, 0, rows_};
  }
  /// A chunk buffer [n, B, width] holding steps first_step .. first_step + n - 1.
  template <typename U>
  cell::SeqView<U> chunk_view(U* data, int64_t width, int64_t first_step) const {
    return {data, p_.batch * width, width, false, first_step};
  }

  const Model& m_;
  const Plan& p_;
  Executor<T>& ex_;
  char* workspace_ = nullptr;
  char* reserve_ = nullptr;
  bool time_major_ = false;
  int64_t loop_bound_ = 0;
  int64_t n_chunks_ = 0;              ///< chunks this call runs
  RunningRows running_;               ///< this call's, from its lengths on the host (if any)
  const int32_t* rows_ = nullptr;     ///< the batch runs sorted by length: run row b is caller row rows_[b]
  const int32_t* seq_len_ = nullptr;  ///< the lengths of the run's rows (the caller's, or sorted)
  std::vector<int> dh_cur_[2];        ///< backward: which dh slot holds the running gradient, per layer
  uint64_t dropout_seed_ = 0;         ///< this call's DropoutWrapper masks
  const uint64_t* dropout_seed_at_ = nullptr;
};

#define DYNRNN_DECLARE(T) extern template class Orchestrator<T>;
DYNRNN_FOR_EACH_ELEMENT_TYPE(DYNRNN_DECLARE)
#undef DYNRNN_DECLARE

}  // namespace dynrnn
