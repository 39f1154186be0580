// bench/flops.h — performance.md §2: FLOP counts in both conventions, the byte model, and the
// §2.5 floor ("percent of roofline") with its three bounds reported separately.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/shapes.h"
#include "bench/types.h"

namespace bench {

/// The ceilings the floor is computed from. A value of 0 means "unknown": the bound that needs it
/// is left out and the row says so. `source` records where the numbers come from.
struct Ceilings {
  double flops_fp32 = 0;  ///< FP32 SIMT GEMM, FLOP/s
  double flops_tf32 = 0;  ///< TF32 tensor-core GEMM, FLOP/s
  double flops_bf16 = 0;  ///< bf16 tensor-core GEMM (float32 accumulation), FLOP/s
  double flops_fp16 = 0;  ///< fp16 tensor-core GEMM (float32 accumulation), FLOP/s
  double flops_fp64 = 0;  ///< FP64 GEMM, FLOP/s
  double bw_hbm = 0;      ///< device-to-device copy bandwidth, bytes read + written per second
  double tau_s = 0;       ///< per-step dependency latency (seconds)
  int64_t l2_bytes = 0;   ///< L2 size: recurrent weights that fit are not charged HBM traffic
  std::string source;     ///< "calibrated on <device>" or "defaults (performance.md ...)"

  /// The compute ceiling of a precision's GEMMs: bf16 and fp16 their tensor-core rates, tf32 its
  /// own, fp32 SIMT, fp64 FP64.
  double flops_for(Precision p) const;
};

/// Defaults from performance.md §2.1/§2.4 (leads to re-measure with --calibrate): H100 figures,
/// or H200 ones when the device name says H200. tau = 0.6 us (cuDNN persistent SMALL_H anchor).
Ceilings default_ceilings(const std::string& device_name, int64_t l2_bytes);

/// What one row computes. concat_layers: layer l > 0 reads D*H inputs (TF
/// stack_bidirectional_dynamic_rnn, the stacks of cuDNN and PyTorch); false: H inputs (TF
/// bidirectional_dynamic_rnn: two independent stacks).
struct WorkInput {
  Cell cell = Cell::kLstm;
  int64_t T = 0, B = 0, I = 0, H = 0;
  int layers = 1;
  int directions = 1;
  bool concat_layers = false;
  std::vector<int32_t> lengths;  ///< [B]
  Mode mode = Mode::kInference;
  int elem_bytes = 4;
};

struct WorkModel {
  int64_t t_loop = 0;     ///< max(length): steps the loop runs
  int64_t n_eff = 0;      ///< sum(length): useful row-steps
  int64_t s_crit = 0;     ///< (t_loop + L - 1) * (1 | 2 for training)
  double flops_full = 0;  ///< incl. input GEMMs, times the mode multiplier (useful row-steps)
  double flops_rec = 0;   ///< DeepBench convention: recurrent GEMMs only, same multiplier
  double bytes = 0;       ///< modelled memory traffic
  // §2.5 bounds (seconds); 0 when a ceiling is unknown.
  double t_compute = 0, t_memory = 0, t_dependency = 0, t_floor = 0;
  std::string binding;     ///< "compute", "memory", "dependency" or "" (unknown)
  bool r_on_chip = false;  ///< recurrent weights fit in L2 (not charged HBM bytes per step)
};

/// The counts and the floor for one row. `P` is the FLOP/s ceiling of the arithmetic in use.
WorkModel work_model(const WorkInput& in, double P, const Ceilings& c);

}  // namespace bench
