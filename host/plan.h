// host/plan.h — the workspace and reserve layout of one call shape (T, B): byte offsets, no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "host/model.h"

namespace dynrnn {

/// A buffer carved from the workspace or the reserve, holding `slots` step slices of `slot_elems`
/// elements each. slice(s) = base + (s % slots) * slot_elems: slots = T (+1) keeps every step,
/// slots = 2 ping-pongs, slots = 1 reuses one slice.
struct Region {
  bool in_reserve = false;
  size_t offset = 0;  ///< bytes
  int64_t slots = 0;  ///< 0: absent
  int64_t slot_elems = 0;

  bool present() const { return slots > 0; }
};

/// Buffers of one layer of one direction. Forward: state sequences, saved activations, input
/// projections; backward: pre-activation gradients and running state gradients.
struct LayerPlan {
  // forward (reserve when training, else workspace)
  Region hseq, cseq;           ///< states before step s (slice s) and after it (slice s + 1)
  Region z;                    ///< pre-activations (LSTM 4H, RNN H, GRU gates 2H)
  Region zc;                   ///< GRU candidate pre-activation
  Region rh;                   ///< GRU r*h
  Region mraw, mp;             ///< LSTM projection input and output (before proj_clip)
  Region y;                    ///< output of a layer below the top (training: kept for backward)
  // forward workspace
  Region gx, gxc;              ///< input projections of all steps (gates; GRU candidate)
  Region gh, ghc;              ///< recurrent GEMM results of one step
  // backward workspace
  Region dz, dzc;              ///< pre-activation gradients in step order
  Region dz_x, dzc_x;          ///< the same at the input's positions (layer 0 when they differ)
  Region dh;                   ///< 2 slots: running gradient of h, ping-pong
  Region dc;                   ///< running gradient of c
  Region drh;                  ///< GRU gradient of r*h
  Region dmp, dmraw;           ///< LSTM projection gradients
  Region dpeep;                ///< per-row peephole gradient contributions
};

struct Plan {
  int64_t max_time = 0;
  int64_t batch = 0;
  bool training = false;
  std::vector<LayerPlan> dirs[2];
  Region y_inference[2][2];    ///< per direction: ping-pong outputs of inner layers (inference)
  Region dy[2][2];             ///< per direction: ping-pong gradients of inner layers' outputs (backward)
  size_t forward_workspace_bytes = 0;
  size_t backward_workspace_bytes = 0;
  size_t reserve_bytes = 0;

  /// Workspace bytes of a call: forward inference, or max(forward, backward) for training.
  size_t workspace_bytes() const {
    return training && backward_workspace_bytes > forward_workspace_bytes ? backward_workspace_bytes
                                                                          : forward_workspace_bytes;
  }
};

/// Every buffer is aligned to this many bytes.
constexpr size_t kAlignment = 256;

/// Lays out buffers for (max_time, batch). Fails with a message naming the sizes when a byte count
/// does not fit in 64 bits.
Status make_plan(const Model& model, int64_t max_time, int64_t batch, bool training, Plan* plan);

}  // namespace dynrnn
