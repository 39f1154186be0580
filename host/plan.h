// host/plan.h — the schedule and buffer layout of one call shape (T, B): chunking, queues, events,
// byte offsets. Arithmetic only; nothing is allocated.
//
// Each layer runs its steps in chunks of K = parallel_iterations steps. Everything a chunk produces
// that later work reads (the states before and after each step, saved pre-activations) lives in
// one "chunk slot"; a layer owns a ring of R slots (chunk c uses slot c % R). Without swap_memory a
// training forward keeps every chunk (R = number of chunks); inference keeps two; with swap_memory
// the ring holds the last R chunks on the device and older chunks go to pinned host memory, from
// which backward brings them, one chunk ahead, into two staging slots of its workspace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "host/model.h"

namespace dynrnn {

/// A buffer carved from the workspace or the reserve: `slots` slices of `slot_elems` elements.
struct Region {
  bool in_reserve = false;
  size_t offset = 0;  ///< bytes
  int64_t slots = 0;  ///< 0: absent
  int64_t slot_elems = 0;

  bool present() const { return slots > 0; }
};

/// Element offsets of the fields of one chunk slot (-1: absent). Entry e of a field with per-step
/// entries starts at offset + e * B * width.
struct ChunkSlot {
  int64_t hs = -1;    ///< K + 1 entries [B, O]: h before the chunk's first step, then after each step
  int64_t cs = -1;    ///< K + 1 entries [B, H] of compute_t<T>: LSTM c, likewise (Model::c_elems)
  int64_t z = -1;     ///< K entries [B, gate_width]: pre-activations (LSTM 4H, RNN H, GRU gates 2H,
                      ///< reset-after GRU 3H)
  int64_t zc = -1;    ///< K entries [B, H]: GRU candidate pre-activation, reset-after GRU n (training)
  int64_t rh = -1;    ///< K entries [B, H]: GRU r * h
  int64_t mraw = -1;  ///< K entries [B, H]: LSTM projection input
  int64_t mp = -1;    ///< K entries [B, P]: LSTM projection output before proj_clip
  int64_t ys = -1;    ///< K entries [B, O]: the output that the layer above reads when it is not the
                      ///< state h (ResidualWrapper: input + h; DropoutWrapper: h through the output
                      ///< mask, or the undropped h when the state is dropped)
  int64_t elems = 0;  ///< slot size (elements, a multiple of the alignment)
};

struct LayerPlan {
  int queue = 0;           ///< executor queue of this layer
  int proj_queue = 0;      ///< the queue of its forward input projections: `queue`, or its own when pipelined
  int ev_proj_ready = -1;  ///< pipeline_projections: + slot, recorded when a chunk's projection is in it
  int ev_proj_free = -1;   ///< pipeline_projections: + slot, recorded when the steps are done with it
  int ev_fwd_done = -1;    ///< recorded when a forward chunk is complete
  int ev_fwd_read = -1;    ///< recorded when the layer has read its input chunk (the slot below is free)
  int ev_bwd_done = -1;    ///< recorded when a backward chunk is complete
  int ev_saved = -1;       ///< swap: + chunk % save_events, recorded when a chunk is on the host
  int ev_loaded = -1;      ///< swap: + staging slot, recorded when a chunk is back on the device

  ChunkSlot slot;     ///< the fields kept across steps and for backward
  Region ring;        ///< R slots of slot.elems (reserve when training, else workspace)
  ChunkSlot scratch;  ///< forward: fields a step needs but nobody keeps (one chunk, workspace)
  Region fscratch;
  ChunkSlot regen;  ///< recompute: the fields backward regenerates for one chunk (workspace)
  Region rscratch;
  size_t host_offset = 0;  ///< swap: bytes into the host buffer of chunk 0 (chunk c at + c * slot bytes)
  Region staging;          ///< swap: 2 slots (workspace) that backward loads host chunks into, so that
                           ///< the reserve stays as forward left it (backward may run again)

  // Forward scratch (workspace): every layer projects its inputs one chunk at a time (pipelined: into
  // slot chunk % 2 of xg, gx and gxc, so that the next chunk's projection runs beside the steps).
  Region xg;       ///< layer 0: the chunk's inputs gathered in step order (and batch order of the run)
  Region xd;       ///< DropoutWrapper input_keep_prob < 1: the chunk's inputs through the mask
  Region gx, gxc;  ///< input projections of one chunk (gates; GRU candidate)
  Region gh, ghc;  ///< recurrent GEMM results of one step
  // Backward scratch (workspace).
  Region dz, dzc;  ///< pre-activation gradients of one chunk, step order (dzc: GRU candidate,
                   ///< reset-after GRU h~^)
  // Layer 0 when its input positions differ from step order (batch-major, reversed, or the batch
  // sorted by length): a chunk's inputs are gathered into step order for dW_x (and recompute), and
  // its input gradient is formed in step order and scattered to the caller's positions.
  Region bxg, dxg;    ///< [K, B, D] each
  Region bxd;         ///< input dropout: xd again, drawn from the same masks, [K, B, Din]
  Region dyd;         ///< output dropout: the chunk's output gradient through the mask, [K, B, O]
  Region dx_bw;       ///< bidirectional, backward stack's layer 0: its dx [T, B, D], added to grad_inputs last
  Region dh;          ///< 2 slots: running gradient of h, ping-pong, compute_t<T> (Model::c_elems)
  Region dc;          ///< running gradient of c, compute_t<T> (Model::c_elems)
  Region drh;         ///< GRU gradient of r * h
  Region dmp, dmraw;  ///< LSTM projection gradients (dmp: one chunk)
  Region dpeep;       ///< per-row peephole gradient contributions of one chunk
  Region dw;          ///< 16-bit types: the layer's weight gradients in compute_t<T>, summed over chunks
  Region dy_in;       ///< layers > 0: 2 chunk slots of the gradient of this layer's input
  // Recompute scratch (workspace): one chunk's input projection and recurrent GEMM results.
  Region rgx, rgxc, rgh, rghc;
};

/// What a call needs from its caller: its shape and the sizes of its buffers.
struct CallSizes {
  int64_t max_time = 0;
  int64_t batch = 0;
  bool training = false;
  size_t forward_workspace_bytes = 0;
  size_t backward_workspace_bytes = 0;
  size_t reserve_bytes = 0;
  size_t host_bytes = 0;

  /// Workspace bytes of a call: forward inference, or max(forward, backward) for training.
  size_t workspace_bytes() const {
    return training && backward_workspace_bytes > forward_workspace_bytes ? backward_workspace_bytes
                                                                          : forward_workspace_bytes;
  }
};

struct Plan : CallSizes {
  int64_t chunk = 1;        ///< K, steps per chunk
  int64_t chunks = 0;       ///< ceil(T / K)
  int64_t ring = 0;         ///< R, chunk slots per layer on the device
  bool swap = false;        ///< chunks older than the ring go to the host
  int64_t save_events = 0;  ///< swap: events per layer marking chunks on the host
  std::vector<LayerPlan> dirs[2];
  int queues = 1;  ///< 0 = the caller's stream, one per layer, (pipelined) one per layer's projections, the copy queue
  int copy_queue = 0;
  int events = 0;
  int ev_grad_inputs = -1;  ///< bidirectional: the forward stack's input gradient is complete
  int ev_sorted = -1;       ///< the batch's length order is in fwd_rows (bwd_rows) on queue 0
  /// The batch sorted by length (Executor::order_by_length), int32 [B] each: forward's in the
  /// forward workspace, backward's in the backward workspace.
  Region fwd_rows, fwd_sorted_len, bwd_rows, bwd_sorted_len;

  /// Number of chunks a call runs when it stops after `steps` steps.
  int64_t chunks_for(int64_t steps) const { return steps / chunk + (steps % chunk != 0); }
  /// Whether chunk c of a call with n_chunks chunks stays on the device (never swapped out).
  bool resident(int64_t c, int64_t n_chunks) const { return !swap || c >= n_chunks - ring; }
};

/// Every buffer is aligned to this many bytes.
constexpr size_t kAlignment = 256;

/// The most queues and events any call of a model uses (every plan of make_plan stays within them),
/// so that a CUDA handle creates all its streams and events once, at creation, and even its first
/// call can be captured into a CUDA graph.
struct PoolSizes {
  int queues = 1;
  int events = 0;
};
PoolSizes pool_sizes(const Model& model);

/// Lays out (max_time, batch) for a forward (training or inference) and the backward that follows.
/// Fails with a message naming the sizes when a byte count does not fit in 64 bits, or when the
/// activation memory budget cannot hold two chunks. shared_slot_bytes: the bytes of one chunk of every
/// layer that shares spec.activation_memory_budget with this model's (all blocks of a call; 0: this
/// model's own), so that every block keeps the same ring and all of them stay within the budget.
Status make_plan(const Model& model, int64_t max_time, int64_t batch, bool training, Plan* plan,
                 int64_t shared_slot_bytes = 0);

/// What one forward or backward runs: the plans of the model's call_blocks, one after another, each
/// in its own part of the caller's workspace, reserve and host reserve. Between stack_bidirectional
/// blocks, layer l's concatenated outputs [T, B, O_fw + O_bw] in the caller's layout (training: slot
/// l in the reserve, since backward reads them again for dW_x; inference: workspace slot l % 2) and,
/// in backward, their gradients (workspace slot l % 2). A slot holds the widest layer's.
///
/// With swap_memory, a training call keeps the concatenated outputs in the reserve only if the
/// activation budget holds them beside every chunk of every block; otherwise (concat_swapped) they
/// live in workspace slots l % 2 as in inference, and a copy of each goes to the host reserve while
/// the layer above runs forward (block l + 1 saves its input), and comes back into its slot for
/// backward while the layer above that runs backward (block l + 2 loads the input of block l + 1;
/// the top block's input is loaded before the first block). These copies run on concat_queue, a
/// queue after every block's own, so that they never wait behind, nor delay, the blocks' chunk copies.
struct CallPlan : CallSizes {
  std::vector<Plan> blocks;
  std::vector<size_t> reserve_offsets;  ///< bytes into the reserve of each block's
  std::vector<size_t> host_offsets;     ///< bytes into the host reserve of each block's
  size_t block_workspace = 0;           ///< bytes into the workspace of every block's
  Region concat, concat_grad;
  std::vector<int64_t> concat_widths;  ///< O_fw + O_bw of each layer below the top
  bool concat_swapped = false;
  size_t concat_host = 0;  ///< concat_swapped: bytes into the host reserve of layer 0's (layer l's follow)
  int concat_queue = 0;    ///< concat_swapped: the queue of the concatenated outputs' copies
  int queues = 1;          ///< queues of a block's call: its plan's, and concat_queue

  /// Elements of layer l's concatenated outputs, all that a copy to or from the host moves.
  int64_t concat_elems(int64_t l) const { return max_time * batch * concat_widths[static_cast<size_t>(l)]; }
  /// concat_swapped: layer l's concatenated outputs in the host reserve.
  char* concat_host_at(int64_t l, char* host, size_t elem_bytes) const {
    return host + concat_host + static_cast<size_t>(l * concat.slot_elems) * elem_bytes;
  }

  /// Layer l's concatenated outputs (grad false) or their gradients (grad true).
  char* concat_at(int64_t l, bool grad, char* workspace, char* reserve, size_t elem_bytes) const {
    const Region& r = grad ? concat_grad : concat;
    return (r.in_reserve ? reserve : workspace) + r.offset +
           static_cast<size_t>(l % r.slots * r.slot_elems) * elem_bytes;
  }
};

/// Plans a call of `model` whose call_blocks are `blocks`; fails as make_plan does.
Status make_call_plan(const Model& model, const std::vector<Model>& blocks, int64_t max_time, int64_t batch,
                      bool training, CallPlan* plan);

}  // namespace dynrnn
