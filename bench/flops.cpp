#include "bench/flops.h"

#include <algorithm>

namespace bench {

double Ceilings::flops_for(Precision p) const {
  switch (p) {
    case Precision::kFp32: return flops_fp32;
    case Precision::kTf32: return flops_tf32;
    case Precision::kFp64: return flops_fp64;
    case Precision::kBf16: return flops_bf16;
    case Precision::kFp16: return flops_fp16;
  }
  return 0;
}

Ceilings default_ceilings(const std::string& device_name, int64_t l2_bytes) {
  Ceilings c;
  const bool h200 = device_name.find("H200") != std::string::npos;
  // performance.md §2.1: measured bf16 8192^3 GEMM and D2D copy on H100 / H200; FP32 SIMT and TF32
  // dense are datasheet leads. FP64 has no figure there: unknown until --calibrate.
  c.flops_bf16 = h200 ? 788e12 : 798e12;
  // Hopper's dense fp16 and bf16 tensor-core rates are the same datasheet figure: the measured bf16
  // rate is the fp16 lead until --calibrate measures fp16 itself.
  c.flops_fp16 = c.flops_bf16;
  c.bw_hbm = h200 ? 4.3e12 : 3.0e12;
  c.flops_fp32 = 67e12;
  c.flops_tf32 = 495e12;
  c.flops_fp64 = 0;
  // performance.md §2.4: cuDNN persistent SMALL_H ~0.6-0.9 us per step (lower anchor).
  c.tau_s = 0.6e-6;
  c.l2_bytes = l2_bytes;
  c.source = std::string("defaults: performance.md ") + (h200 ? "H200" : "H100") +
             " figures (leads, not measured on this card; run --calibrate)";
  return c;
}

namespace {

double term(double amount, double rate) {
  return rate > 0 ? amount / rate : 0;
}

}  // namespace

WorkModel work_model(const WorkInput& in, double P, const Ceilings& c) {
  WorkModel w;
  const double G = cell_gates(in.cell);
  const double H = static_cast<double>(in.H);
  const double s = in.elem_bytes;
  const int L = std::max(1, in.layers);
  const int D = std::max(1, in.directions);
  const int64_t T = in.T;
  std::vector<int32_t> len = in.lengths;
  if (len.empty()) len.assign(static_cast<size_t>(in.B), static_cast<int32_t>(T));
  w.t_loop = loop_steps(len, T);
  int64_t n_eff = 0;
  for (int32_t l : len) n_eff += std::min<int64_t>(std::max<int32_t>(l, 0), T);
  w.n_eff = n_eff;
  const double N = static_cast<double>(n_eff);

  auto layer_in = [&](int l) -> double {
    if (l == 0) return static_cast<double>(in.I);
    return in.concat_layers ? D * H : H;
  };

  // §2.2 FLOPs per layer and direction, over the useful row-steps. G gate blocks of H columns: the
  // GEMMs of x (in x GH) and h (H x GH). GRUs have G = 3 in both forms: the reset-after GRU (gru_ra,
  // cuDNN's) runs one recurrent GEMM of 3H columns per step; TF's GRU the same 3H columns split over
  // two dependent GEMMs (2H gates, then H candidate on r * h), so equal FLOPs and weight bytes.
  double f_fwd = 0, f_rec = 0;
  for (int d = 0; d < D; ++d) {
    for (int l = 0; l < L; ++l) {
      f_fwd += 2 * G * H * (layer_in(l) + H) * N;
      f_rec += 2 * G * H * H * N;
    }
  }
  const int mult = mode_flop_multiplier(in.mode);
  w.flops_full = mult * f_fwd;
  w.flops_rec = mult * f_rec;

  // Recurrent weights: charged HBM bytes on every step unless all of them fit in L2.
  const double r_bytes_layer = G * H * H * s;
  const double r_bytes_all = r_bytes_layer * L * D;
  w.r_on_chip = c.l2_bytes > 0 && r_bytes_all <= static_cast<double>(c.l2_bytes);

  // Active rows per time step (rows whose length exceeds t).
  std::vector<double> active(static_cast<size_t>(w.t_loop), 0.0);
  for (int32_t l : len) {
    const int64_t e = std::min<int64_t>(std::max<int32_t>(l, 0), w.t_loop);
    for (int64_t t = 0; t < e; ++t) active[static_cast<size_t>(t)] += 1;
  }

  const bool fwd_pass = in.mode != Mode::kBackward;
  const bool bwd_pass = mode_has_backward(in.mode);
  const bool saves = in.mode != Mode::kInference;  // training forward writes, backward reads, saved tensors
  const int64_t s_pass = w.t_loop > 0 ? w.t_loop + L - 1 : 0;
  w.s_crit = s_pass * ((fwd_pass ? 1 : 0) + (bwd_pass ? 1 : 0));

  // One pass over the wavefront: at wavefront step k, layer l works on time t = k - l (all
  // directions in parallel). Per step: max(tau, F/P, Q/BW).
  double t_crit = 0, q_steps = 0;
  const int passes = (fwd_pass ? 1 : 0) + (bwd_pass ? 1 : 0);
  for (int64_t k = 0; k < s_pass; ++k) {
    double f = 0, q = 0;
    for (int l = 0; l < L; ++l) {
      const int64_t t = k - l;
      if (t < 0 || t >= w.t_loop) continue;
      const double b = active[static_cast<size_t>(t)];
      f += D * 2 * G * H * H * b;
      q += D * ((w.r_on_chip ? 0.0 : r_bytes_layer) + s * b * (G + 2) * H + (saves ? s * b * (G + 1) * H : 0.0));
    }
    const double step = std::max({c.tau_s, term(f, P), term(q, c.bw_hbm)});
    t_crit += passes * step;
    q_steps += passes * q;
  }

  // Hoisted GEMMs (input projection; dx, dW, dR after the backward sweep), overlappable.
  double f_batched = 0, q_batched = 0;
  for (int d = 0; d < D; ++d) {
    for (int l = 0; l < L; ++l) {
      const double il = layer_in(l);
      if (fwd_pass) {
        f_batched += 2 * G * H * il * N;
        q_batched += s * N * (il + G * H);
      }
      if (bwd_pass) {
        f_batched += 2 * (2 * G * H * il * N) + 2 * G * H * H * N;
        q_batched += s * N * (2 * G * H + 2 * il + H);
      }
    }
  }
  const double t_batched = std::max(term(f_batched, P), term(q_batched, c.bw_hbm));

  w.bytes = q_steps + q_batched;
  w.t_floor = t_crit + t_batched;
  w.t_compute = term(w.flops_full, P);
  w.t_memory = term(w.bytes, c.bw_hbm);
  w.t_dependency = static_cast<double>(w.s_crit) * c.tau_s;
  double best = 0;
  if (P > 0 && w.t_compute > best) best = w.t_compute, w.binding = "compute";
  if (c.bw_hbm > 0 && w.t_memory > best) best = w.t_memory, w.binding = "memory";
  if (c.tau_s > 0 && w.t_dependency > best) best = w.t_dependency, w.binding = "dependency";
  if (P <= 0 || c.bw_hbm <= 0 || c.tau_s <= 0) {
    // A ceiling is unknown: the floor is incomplete; say which term is missing.
    if (P <= 0) w.binding += w.binding.empty() ? "P unknown" : " (P unknown)";
  }
  return w;
}

}  // namespace bench
