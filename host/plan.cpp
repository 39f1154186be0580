#include "host/plan.h"

#include <algorithm>
#include <string>

#include "host/checked_math.h"

namespace dynrnn {
namespace {

/// Hands out aligned byte ranges from a running offset, remembering any overflow.
class Carver {
 public:
  Carver(size_t start, size_t elem_bytes, bool in_reserve)
      : end_(start), elem_bytes_(elem_bytes), in_reserve_(in_reserve) {}

  Region take(int64_t slots, int64_t slot_elems) {
    Region r;
    int64_t bytes = 0;
    if (slots <= 0) return r;
    if (!checked_product({slots, slot_elems, static_cast<int64_t>(elem_bytes_)}, &bytes) ||
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

}  // namespace

Status make_plan(const Model& model, int64_t T, int64_t B, bool training, Plan* out) {
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
  Carver reserve(0, eb, true);
  Carver fwd_ws(0, eb, false);
  Carver bwd_ws(0, eb, false);
  bool overflow = false;
  for (int d = 0; d < model.num_directions(); ++d) {
    const std::vector<LayerModel>& layers = model.dirs[d];
    const int top = static_cast<int>(layers.size()) - 1;
    int64_t max_inner_out = 0, max_inner_in = 0;
    for (const LayerModel& l : layers) {
      if (l.layer < top) max_inner_out = std::max(max_inner_out, l.out_width);
      if (l.layer > 0) max_inner_in = std::max(max_inner_in, l.in_width);
    }
    // Forward state that persists per layer: in the reserve (all steps) when training.
    Carver& keep = training ? reserve : fwd_ws;
    const int64_t seq_slots = training ? T + 1 : 2;
    const int64_t step_slots = training ? T : 1;
    if (!training) {
      p.y_inference[d][0] = fwd_ws.take(top > 0 ? 1 : 0, TB * max_inner_out);
      p.y_inference[d][1] = fwd_ws.take(top > 1 ? 1 : 0, TB * max_inner_out);
    }
    p.dirs[d].resize(layers.size());
    for (const LayerModel& l : layers) {
      LayerPlan& lp = p.dirs[d][l.layer];
      const int64_t H = l.units;
      lp.hseq = keep.take(seq_slots, B * l.out_width);
      if (l.is_lstm) lp.cseq = keep.take(seq_slots, B * H);
      if (training || l.is_gru) lp.z = keep.take(l.is_gru ? step_slots : (training ? T : 0), B * l.gate_width);
      if (l.is_gru) {
        lp.zc = keep.take(training ? T : 0, B * H);
        lp.rh = keep.take(step_slots, B * H);
      }
      if (l.project) {
        lp.mraw = keep.take(step_slots, B * H);
        lp.mp = keep.take(step_slots, B * l.out_width);
      }
      if (training && l.layer < top) lp.y = reserve.take(1, TB * l.out_width);
      if (!training && l.layer < top) lp.y = p.y_inference[d][l.layer % 2];
    }
    // Scratch reused by consecutive layers of one direction: each layer starts at the same base.
    const size_t fwd_base = fwd_ws.end();
    size_t fwd_end = fwd_base;
    for (const LayerModel& l : layers) {
      LayerPlan& lp = p.dirs[d][l.layer];
      Carver c(fwd_base, eb, false);
      lp.gx = c.take(1, TB * l.gate_width);
      lp.gh = c.take(1, B * l.gate_width);
      if (l.is_gru) {
        lp.gxc = c.take(1, TB * l.units);
        lp.ghc = c.take(1, B * l.units);
      }
      overflow |= c.overflow();
      fwd_end = std::max(fwd_end, c.end());
    }
    overflow |= fwd_ws.overflow();
    fwd_ws = Carver(fwd_end, eb, false);
    if (training) {
      p.dy[d][0] = bwd_ws.take(top > 0 ? 1 : 0, TB * max_inner_in);
      p.dy[d][1] = bwd_ws.take(top > 1 ? 1 : 0, TB * max_inner_in);
      const size_t bwd_base = bwd_ws.end();
      size_t bwd_end = bwd_base;
      for (const LayerModel& l : layers) {
        LayerPlan& lp = p.dirs[d][l.layer];
        const int64_t H = l.units;
        Carver c(bwd_base, eb, false);
        lp.dz = c.take(T, B * l.gate_width);
        if (l.is_gru) lp.dzc = c.take(T, B * H);
        // Layer 0 reads x at the caller's positions; when they differ from step order (batch-major,
        // or the reversed direction), the cell also writes its gradients there for dW_x and dx.
        const bool dual = l.layer == 0 && (!model.spec.time_major || d == 1);
        if (dual) {
          lp.dz_x = c.take(1, TB * l.gate_width);
          if (l.is_gru) lp.dzc_x = c.take(1, TB * H);
        }
        lp.dh = c.take(2, B * l.out_width);
        if (l.is_lstm) lp.dc = c.take(1, B * H);
        if (l.is_gru) lp.drh = c.take(1, B * H);
        if (l.project) {
          lp.dmp = c.take(T, B * l.out_width);
          lp.dmraw = c.take(1, B * H);
        }
        if (l.peepholes) lp.dpeep = c.take(T, B * 3 * H);
        overflow |= c.overflow();
        bwd_end = std::max(bwd_end, c.end());
      }
      overflow |= bwd_ws.overflow();
      bwd_ws = Carver(bwd_end, eb, false);
    }
    overflow |= reserve.overflow() || fwd_ws.overflow() || bwd_ws.overflow();
  }
  if (overflow) {
    return Status(StatusCode::kInvalidValue, "workspace size for max_time = " + std::to_string(T) +
                                                 ", batch = " + std::to_string(B) + " overflows 64 bits");
  }
  p.reserve_bytes = training ? reserve.end() : 0;
  p.forward_workspace_bytes = fwd_ws.end();
  p.backward_workspace_bytes = bwd_ws.end();
  *out = std::move(p);
  return Status::ok();
}

}  // namespace dynrnn
