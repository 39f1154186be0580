#include "bench/rows.h"

#include <chrono>
#include <cmath>

namespace bench {

Row base_row(const Problem& p, Precision prec, Mode mode, const std::string& impl, const std::string& variant,
             bool gpu) {
  const Shape& s = p.shape;
  Row r;
  r.shape_id = s.id;
  r.source = s.source;
  r.cell = cell_name(s.cell);
  r.T = s.T;
  r.B = s.B;
  r.I = s.I;
  r.H = s.H;
  r.layers = s.layers;
  r.directions = s.bidirectional ? 2 : 1;
  r.lengths = lengths_name(s.lengths);
  r.t_loop = p.t_loop;
  r.sum_len = sum_lengths(p.lengths);
  r.precision = precision_name(prec);
  r.mode = mode_name(mode);
  r.impl = impl;
  r.variant = variant;
  r.device = gpu ? "gpu" : "cpu";
  r.timer = gpu ? "cuda-events" : "host-wall-clock";
  r.command = "dynrnn-bench " + shape_flags(s) + " --precision " + precision_name(prec) + " --mode " + mode_name(mode) +
              " --impl " + impl + (gpu ? "" : " --cpu");
  return r;
}

WorkInput work_input(const Problem& p, Mode mode, Precision prec) {
  return work_input(p, mode, prec, p.stacked());
}

WorkInput work_input(const Problem& p, Mode mode, Precision prec, bool concat_layers) {
  WorkInput w;
  w.cell = p.shape.cell;
  w.T = p.shape.T;
  w.B = p.shape.B;
  w.I = p.shape.I;
  w.H = p.shape.H;
  w.layers = p.shape.layers;
  w.directions = p.directions();
  w.concat_layers = concat_layers;
  w.lengths = p.lengths;
  w.mode = mode;
  w.elem_bytes = precision_bytes(prec);
  return w;
}

void fill_timing(Row& r, const std::vector<double>& samples_ms, const WorkModel& w, int layers, bool roofline) {
  const Stats st = summarize(samples_ms);
  r.iters = st.count;
  r.median_ms = st.median;
  r.p10_ms = st.p10;
  r.p90_ms = st.p90;
  const double sec = st.median * 1e-3;
  if (w.t_loop > 0 && layers > 0) r.per_step_us = st.median * 1e3 / static_cast<double>(w.t_loop * layers);
  if (w.s_crit > 0) r.per_crit_step_us = st.median * 1e3 / static_cast<double>(w.s_crit);
  r.flops_full = w.flops_full;
  r.model_bytes = w.bytes;
  if (sec > 0) {
    r.tflops_full = w.flops_full / sec / 1e12;
    r.tflops_rec = w.flops_rec / sec / 1e12;
  }
  if (roofline) {
    r.floor_ms = w.t_floor * 1e3;
    r.bound_compute_ms = w.t_compute * 1e3;
    r.bound_memory_ms = w.t_memory * 1e3;
    r.bound_dependency_ms = w.t_dependency * 1e3;
    r.binding = w.binding;
    if (sec > 0 && w.t_floor > 0) r.pct_roofline = w.t_floor / sec;
  }
}

std::vector<double> time_host_ms(int warmup, int iters, const std::function<void(int)>& fn) {
  for (int i = 0; i < warmup; ++i) fn(i);
  std::vector<double> ms;
  ms.reserve(static_cast<size_t>(iters));
  for (int i = 0; i < iters; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    fn(i);
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  return ms;
}

Mode verification_mode(Mode m) {
  return mode_has_backward(m) ? Mode::kTraining : m;
}

Precision reference_key(Precision p) {
  return is_16bit(p) ? p : Precision::kFp64;
}

std::string reference_label(const std::string& reference, Precision p) {
  return is_16bit(p) ? reference + " of the " + precision_name(p) + "-rounded data" : reference;
}

void add_note(Row& r, const std::string& note) {
  r.note += (r.note.empty() ? "" : "; ") + note;
}

}  // namespace bench
