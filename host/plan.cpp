#include "host/plan.h"

#include <algorithm>
#include <string>

#include "host/checked_math.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

/// Hands out aligned byte ranges from a running offset, remembering any overflow.
class Carver {
 public:
  Carver(size_t elem_bytes, bool in_reserve, size_t start = 0)
      : end_(start), elem_bytes_(elem_bytes), in_reserve_(in_reserve) {}

  /// `slots` slices of the product of `elem_factors` elements each.
  Region take(int64_t slots, std::initializer_list<int64_t> elem_factors) {
    Region r;
    int64_t slot_elems = 0, bytes = 0;
    if (slots <= 0) return r;
    if (!checked_product(elem_factors, &slot_elems) ||
        !checked_product({slots, slot_elems, static_cast<int64_t>(elem_bytes_)}, &bytes) ||
        bytes > (int64_t(1) << 62) || end_ > (size_t(1) << 62)) {
      overflow_ = true;
      return r;
    }
    r.in_reserve = in_reserve_;
    r.offset = end_;
    r.slots = slots;
    r.slot_elems = slot_elems;
    end_ += (static_cast<size_t>(bytes) + kAlignment - 1) / kAlignment * kAlignment;
    return r;
  }
  size_t end() const { return end_; }
  bool overflow() const { return overflow_; }

 private:
  size_t end_;
  size_t elem_bytes_;
  bool in_reserve_;
  bool overflow_ = false;
};

/// Events per layer that mark chunks on the host (swap_memory). Chunk c uses event c % this; a wait
/// for chunk c may thus see a later chunk's record, which is stricter (the copy queue is in order) and
/// keeps the event count bounded however large the ring.
constexpr int64_t kMaxSaveEvents = 64;

/// The fields of a chunk slot.
enum Field : unsigned { kHs = 1, kCs = 2, kZ = 4, kZc = 8, kRh = 16, kMraw = 32, kMp = 64, kYs = 128 };

/// The fields a layer's cell has at all, and those a forward step writes for the next stage.
unsigned cell_fields(const LayerModel& l) {
  return kHs | kZ | (l.is_lstm ? kCs : 0u) | (l.is_gru ? kZc | kRh : 0u) | (l.reset_after ? kZc : 0u) |
         (l.project ? kMraw | kMp : 0u);
}
unsigned forward_fields(const LayerModel& l) {
  return kHs | (l.is_lstm ? kCs : 0u) | (l.is_gru ? kZ | kRh : 0u) | (l.project ? kMraw | kMp : 0u);
}

/// Lays out the given fields of one chunk slot; false on overflow.
bool layout_slot(const Model& m, const LayerModel& l, unsigned fields, int64_t K, int64_t B, ChunkSlot* slot) {
  const int64_t align = static_cast<int64_t>(kAlignment / m.elem_bytes);
  int64_t end = 0;
  bool ok = true;
  auto field = [&](Field f, int64_t entries, int64_t width) -> int64_t {
    if (!(fields & f)) return -1;
    int64_t n = 0;
    const int64_t at = end;
    ok = ok && checked_product({entries, B, width}, &n) && n < (int64_t(1) << 58);
    if (ok) end += (n + align - 1) / align * align;
    return at;
  };
  slot->hs = field(kHs, K + 1, l.out_width);
  slot->cs = field(kCs, K + 1, l.units * m.c_elems);
  slot->z = field(kZ, K, l.gate_width);
  slot->zc = field(kZc, K, l.units);
  slot->rh = field(kRh, K, l.units);
  slot->mraw = field(kMraw, K, l.units);
  slot->mp = field(kMp, K, l.out_width);
  slot->ys = field(kYs, K, l.out_width);
  slot->elems = end;
  return ok;
}

/// K, the steps per chunk of a call of T steps.
int64_t chunk_steps(const Model& model, int64_t T) {
  return std::max<int64_t>(1, std::min<int64_t>(model.spec.parallel_iterations, std::max<int64_t>(T, 1)));
}

/// Lays out every layer's chunk slot into dirs: a training forward keeps every field backward reads,
/// or only the states when backward regenerates the rest; inference keeps the states. Also the
/// forward scratch and recompute's fields. Sums the kept slots' bytes; false on overflow.
bool layout_slots(const Model& model, int64_t K, int64_t B, bool training, std::vector<LayerPlan> (&dirs)[2],
                  int64_t* all_slot_bytes) {
  const bool regenerate = training && model.spec.recompute;
  *all_slot_bytes = 0;
  for (int d = 0; d < model.num_directions(); ++d) {
    dirs[d].resize(model.dirs[d].size());
    for (const LayerModel& l : model.dirs[d]) {
      LayerPlan& lp = dirs[d][l.layer];
      // A layer whose output is not its state h (residual, output or state dropout) keeps its output
      // for the layer above (and its backward's dW_x) like a state.
      const bool has_above = l.layer + 1 < static_cast<int>(model.dirs[d].size());
      const bool own_output = !l.output_is_h() && has_above;
      const unsigned states = kHs | (l.is_lstm ? kCs : 0u) | (own_output ? kYs : 0u);
      const unsigned kept = (training && !regenerate ? cell_fields(l) : 0u) | states;
      int64_t bytes = 0;
      if (!layout_slot(model, l, kept, K, B, &lp.slot) ||
          !layout_slot(model, l, forward_fields(l) & ~kept, K, B, &lp.scratch) ||
          !layout_slot(model, l, regenerate ? cell_fields(l) & ~kept : 0u, K, B, &lp.regen) ||
          !checked_mul(lp.slot.elems, static_cast<int64_t>(model.elem_bytes), &bytes) ||
          !checked_add(*all_slot_bytes, bytes, all_slot_bytes)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

PoolSizes pool_sizes(const Model& model) {
  // A stack_bidirectional call runs its blocks (two layers each) one after another.
  const bool stacked = model.spec.stack_bidirectional;
  const int layers = stacked ? 2 : static_cast<int>(model.dirs[0].size() + model.dirs[1].size());
  const bool swap = model.spec.swap_memory, pipelined = model.spec.pipeline_projections;
  PoolSizes s;
  // As make_plan counts them: the caller's queue, one per layer (pipelined: two), the copy queue (and
  // make_call_plan's concat_queue); per layer three events (pipelined: four more), and with swap up to
  // kMaxSaveEvents save events and two load events; one for dx, one for the batch's length order.
  s.queues = 1 + layers * (pipelined ? 2 : 1) + (swap ? 1 : 0) + (swap && stacked ? 1 : 0);
  s.events = layers * (3 + (pipelined ? 4 : 0) + (swap ? static_cast<int>(kMaxSaveEvents) + 2 : 0)) + 2;
  return s;
}

Status make_plan(const Model& model, int64_t T, int64_t B, bool training, Plan* out, int64_t shared_slot_bytes) {
  Plan p;
  p.max_time = T;
  p.batch = B;
  p.training = training;
  const size_t eb = model.elem_bytes;
  int64_t TB = 0;
  if (!checked_mul(T, B, &TB)) {
    return Status(StatusCode::kInvalidValue,
                  "max_time * batch overflows 64 bits: " + std::to_string(T) + " * " + std::to_string(B));
  }
  const int64_t K = chunk_steps(model, T);
  p.chunk = K;
  p.chunks = T / K + (T % K != 0);  // ceil without overflow near INT64_MAX
  const Status overflow(StatusCode::kInvalidValue, "buffer sizes for max_time = " + std::to_string(T) +
                                                       ", batch = " + std::to_string(B) + " overflow 64 bits");

  // Chunk slots first: their size decides the ring.
  int64_t all_slot_bytes = 0;
  if (!layout_slots(model, K, B, training, p.dirs, &all_slot_bytes)) return overflow;
  if (shared_slot_bytes > 0) all_slot_bytes = shared_slot_bytes;
  const bool regenerate = training && model.spec.recompute;
  if (!training) {
    p.ring = std::min<int64_t>(2, p.chunks);
  } else if (!model.spec.swap_memory) {
    p.ring = p.chunks;
  } else {
    const size_t budget = model.spec.activation_memory_budget;
    int64_t ring =
        budget == 0 || all_slot_bytes == 0 ? 2 : static_cast<int64_t>(budget / static_cast<size_t>(all_slot_bytes));
    if (ring < 2 && p.chunks > 1) {
      return Status(StatusCode::kInvalidValue,
                    "spec.activation_memory_budget is " + std::to_string(budget) +
                        " bytes; swap_memory needs at least two chunks on the device (2 x " +
                        std::to_string(all_slot_bytes) + " bytes for max_time = " + std::to_string(T) +
                        ", batch = " + std::to_string(B) + ", parallel_iterations = " + std::to_string(K) +
                        "): raise the budget or lower parallel_iterations");
    }
    p.ring = std::min(std::max<int64_t>(ring, 2), p.chunks);
    p.swap = p.ring < p.chunks;
    p.save_events = std::min(p.ring, kMaxSaveEvents);
  }

  Carver reserve(eb, true), fwd_ws(eb, false), bwd_ws(eb, false);
  Carver& keep = training ? reserve : fwd_ws;
  int64_t host = 0;
  int next_event = 0;
  int layer_index = 0;
  const int layers = static_cast<int>(model.dirs[0].size() + model.dirs[1].size());
  const bool pipelined = model.spec.pipeline_projections;
  const int64_t proj_slots = pipelined ? 2 : 1;
  for (int d = 0; d < model.num_directions(); ++d) {
    for (const LayerModel& l : model.dirs[d]) {
      LayerPlan& lp = p.dirs[d][l.layer];
      const int64_t H = l.units, GW = l.gate_width, O = l.out_width;
      lp.queue = 1 + layer_index++;
      lp.proj_queue = pipelined ? lp.queue + layers : lp.queue;
      lp.ev_fwd_done = next_event++;
      lp.ev_fwd_read = next_event++;
      lp.ev_bwd_done = next_event++;
      if (pipelined) {
        lp.ev_proj_ready = next_event;
        lp.ev_proj_free = next_event + 2;
        next_event += 4;
      }
      lp.ring = keep.take(p.ring, {lp.slot.elems});
      const size_t slot_bytes = static_cast<size_t>(lp.slot.elems) * eb;
      if (p.swap) {
        lp.ev_saved = next_event;
        next_event += static_cast<int>(p.save_events);
        lp.ev_loaded = next_event;
        next_event += 2;
        lp.host_offset = static_cast<size_t>(host);
        int64_t layer_host = 0;
        if (!checked_mul(p.chunks - p.ring, static_cast<int64_t>(slot_bytes), &layer_host) ||
            !checked_add(host, layer_host, &host)) {
          return overflow;
        }
      }

      // Layer 0 reads x at the caller's positions; unless they are in step order (time-major, forward
      // direction, the batch not sorted by length), forward gathers a chunk of them for the
      // projection, and backward gathers it again (dW_x, recompute) and scatters the chunk's input
      // gradient back to those positions. Whether a call sorts depends on its lengths, so every
      // layer 0 has the buffers.
      const bool gathers = l.layer == 0;
      if (gathers) lp.xg = fwd_ws.take(proj_slots, {K, B, l.in_width});
      if (l.input_dropout) lp.xd = fwd_ws.take(1, {K, B, l.in_width});
      lp.fscratch = fwd_ws.take(lp.scratch.elems > 0 ? 1 : 0, {lp.scratch.elems});
      lp.gx = fwd_ws.take(proj_slots, {K, B, GW});
      lp.gh = fwd_ws.take(1, {B, GW});
      if (l.is_gru) {
        lp.gxc = fwd_ws.take(proj_slots, {K, B, H});
        lp.ghc = fwd_ws.take(1, {B, H});
      }
      if (!training) continue;
      lp.dz = bwd_ws.take(1, {K, B, GW});
      if (l.is_gru || l.reset_after) lp.dzc = bwd_ws.take(1, {K, B, H});
      if (gathers) {
        lp.bxg = bwd_ws.take(1, {K, B, l.in_width});
        lp.dxg = bwd_ws.take(1, {K, B, l.in_width});
        if (d == 1) lp.dx_bw = bwd_ws.take(1, {TB, l.in_width});
      }
      if (l.input_dropout) lp.bxd = bwd_ws.take(1, {K, B, l.in_width});
      if (l.output_dropout) lp.dyd = bwd_ws.take(1, {K, B, O});
      if (p.swap) lp.staging = bwd_ws.take(2, {lp.slot.elems});
      lp.dh = bwd_ws.take(2, {B, O, model.c_elems});
      if (l.is_lstm) lp.dc = bwd_ws.take(1, {B, H, model.c_elems});
      if (l.is_gru) lp.drh = bwd_ws.take(1, {B, H});
      if (l.project) {
        lp.dmp = bwd_ws.take(1, {K, B, O});
        lp.dmraw = bwd_ws.take(1, {B, H});
      }
      if (l.peepholes) lp.dpeep = bwd_ws.take(1, {K, B, 3, H});
      // Rounding a running sum to 16 bits once per chunk would lose the small late terms.
      if (model.c_elems > 1) lp.dw = bwd_ws.take(1, {l.param_end - l.param_begin, model.c_elems});
      if (l.layer > 0) lp.dy_in = bwd_ws.take(2, {K, B, l.in_width});
      if (regenerate) {
        lp.rscratch = bwd_ws.take(lp.regen.elems > 0 ? 1 : 0, {lp.regen.elems});
        lp.rgx = bwd_ws.take(1, {K, B, GW});
        lp.rgh = bwd_ws.take(1, {K, B, GW});
        if (l.is_gru) {
          lp.rgxc = bwd_ws.take(1, {K, B, H});
          lp.rghc = bwd_ws.take(1, {K, B, H});
        }
      }
    }
  }
  // int32 [B] in T elements.
  const int64_t int_elems = static_cast<int64_t>((sizeof(int32_t) + eb - 1) / eb);
  p.fwd_rows = fwd_ws.take(1, {B, int_elems});
  p.fwd_sorted_len = fwd_ws.take(1, {B, int_elems});
  if (training) {
    p.bwd_rows = bwd_ws.take(1, {B, int_elems});
    p.bwd_sorted_len = bwd_ws.take(1, {B, int_elems});
  }
  if (reserve.overflow() || fwd_ws.overflow() || bwd_ws.overflow()) return overflow;
  p.ev_grad_inputs = next_event++;
  p.ev_sorted = next_event++;
  p.events = next_event;
  p.queues = 1 + layer_index * static_cast<int>(proj_slots) + (p.swap ? 1 : 0);
  p.copy_queue = p.swap ? p.queues - 1 : 0;
  p.reserve_bytes = training ? reserve.end() : 0;
  p.forward_workspace_bytes = fwd_ws.end();
  p.backward_workspace_bytes = bwd_ws.end();
  p.host_bytes = static_cast<size_t>(host);
  *out = std::move(p);
  return Status::ok();
}

Status make_call_plan(const Model& model, const std::vector<Model>& blocks, int64_t T, int64_t B, bool training,
                      CallPlan* out) {
  CallPlan p;
  p.max_time = T;
  p.batch = B;
  p.training = training;
  const Status overflow(StatusCode::kInvalidValue, "buffer sizes for max_time = " + std::to_string(T) +
                                                       ", batch = " + std::to_string(B) + " overflow 64 bits");
  // The blocks' rings share the activation memory budget: each keeps as many chunks as the budget
  // holds of every block's.
  int64_t shared = 0;
  if (blocks.size() > 1) {
    for (const Model& m : blocks) {
      std::vector<LayerPlan> dirs[2];
      int64_t bytes = 0;
      if (!layout_slots(m, chunk_steps(m, T), B, training, dirs, &bytes) || !checked_add(shared, bytes, &shared)) {
        return overflow;
      }
    }
  }
  p.blocks.resize(blocks.size());
  size_t blocks_reserve = 0, host = 0;
  bool ok = true;
  for (size_t b = 0; b < blocks.size(); ++b) {
    DYNRNN_TRY(make_plan(blocks[b], T, B, training, &p.blocks[b], shared));
    p.reserve_offsets.push_back(blocks_reserve);
    p.host_offsets.push_back(host);
    ok = ok && checked_add(blocks_reserve, p.blocks[b].reserve_bytes, &blocks_reserve) &&
         checked_add(host, p.blocks[b].host_bytes, &host);
    p.queues = std::max(p.queues, p.blocks[b].queues);
  }
  // Layer l's concatenated outputs, for l below the top (whose outputs are the caller's).
  const int64_t boundaries = static_cast<int64_t>(blocks.size()) - 1;
  int64_t width = 0;
  for (int64_t l = 0; l < boundaries; ++l) {
    const Model& m = blocks[static_cast<size_t>(l)];
    p.concat_widths.push_back(m.dirs[0][0].out_width + m.dirs[1][0].out_width);
    width = std::max(width, p.concat_widths.back());
  }
  const size_t eb = model.elem_bytes;
  // In the reserve after the blocks' (training), unless swap_memory's budget cannot hold them.
  Carver rs(eb, true, blocks_reserve);
  const Region kept = rs.take(training ? boundaries : 0, {T, B, width});
  p.concat_swapped =
      kept.present() && model.spec.swap_memory && (p.blocks[0].swap || rs.end() > model.spec.activation_memory_budget);
  Carver ws(eb, false);
  if (boundaries > 0) {
    const int64_t slots = std::min<int64_t>(2, boundaries);
    if (training) p.concat_grad = ws.take(slots, {T, B, width});
    if (!training || p.concat_swapped) p.concat = ws.take(slots, {T, B, width});
  }
  p.block_workspace = ws.end();
  ok = ok && !ws.overflow();
  for (const Plan& bp : p.blocks) {
    size_t fwd = 0, bwd = 0;
    ok = ok && checked_add(p.block_workspace, bp.forward_workspace_bytes, &fwd) &&
         checked_add(p.block_workspace, bp.backward_workspace_bytes, &bwd);
    p.forward_workspace_bytes = std::max(p.forward_workspace_bytes, fwd);
    if (training) p.backward_workspace_bytes = std::max(p.backward_workspace_bytes, bwd);
  }
  if (p.concat_swapped) {
    p.concat_host = host;
    ok = ok && checked_add(host, rs.end() - blocks_reserve, &host);
    p.concat_queue = p.queues++;
  } else if (kept.present()) {
    p.concat = kept;
  }
  if (!ok || rs.overflow() || rs.end() > (size_t(1) << 62) || host > (size_t(1) << 62)) return overflow;
  p.reserve_bytes = !training ? 0 : p.concat_swapped ? blocks_reserve : rs.end();
  p.host_bytes = host;
  *out = std::move(p);
  return Status::ok();
}

}  // namespace dynrnn
