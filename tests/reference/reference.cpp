// Independent float64 reference of dynamic_rnn; see reference.h.
// Written from shared/spec/tf-dynamic-rnn.md only. Plain and slow on purpose.
#include "reference.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace ref {
namespace {

using Vec = std::vector<double>;
using Pattern = std::vector<int8_t>;

bool is_lstm(CellKind k) {
  return k == CellKind::BasicLSTM || k == CellKind::LSTM;
}

// ---------------------------------------------------------------- scalar ops
double sigmoid(double v) {
  return 1.0 / (1.0 + std::exp(-v));
}

double act(double v, bool relu, Pattern* pat) {
  if (!relu) return std::tanh(v);
  if (pat) pat->push_back(v > 0 ? 1 : 0);
  return v > 0 ? v : 0.0;
}
// Activation derivative written from the activation's output (TanhGrad / ReluGrad).
double act_grad(double y, bool relu) {
  if (relu) return y > 0 ? 1.0 : 0.0;
  return 1.0 - y * y;
}
// TF clip_by_value: maximum(minimum(v, hi), lo).
double clip(double v, double lo, double hi, Pattern* pat) {
  double r = std::max(std::min(v, hi), lo);
  if (pat) pat->push_back((v <= hi && std::min(v, hi) >= lo) ? 2 : 3);
  return r;
}
// Gradient mask of clip_by_value: Minimum passes where v <= hi, Maximum where
// minimum(v, hi) >= lo (inclusive at both bounds).
double clip_pass(double v, double lo, double hi) {
  return (v <= hi && std::min(v, hi) >= lo) ? 1.0 : 0.0;
}

// ---------------------------------------------------------------- dropout
// DropoutWrapper's sites: the cell's input, its output, and its new state's h (never an LSTM's c:
// TF's default dropout_state_filter_visitor keeps LSTMStateTuple.c undropped).
constexpr int kSiteInput = 0, kSiteOutput = 1, kSiteState = 2;

double raw_keep(const Cell& cell, int site) {
  return site == kSiteInput ? cell.input_keep_prob : site == kSiteOutput ? cell.output_keep_prob : cell.state_keep_prob;
}
const char* keep_name(int site) {
  return site == kSiteInput ? "input_keep_prob" : site == kSiteOutput ? "output_keep_prob" : "state_keep_prob";
}

// DropoutWrapper's keep probability at `site`, as TF holds it: its __init__ runs a Python float
// through convert_to_tensor (a float32 constant) and keeps float(constant_value), so the wrapper
// computes with the float32-rounded value, float64 cells too.
double keep_of(const Cell& cell, int site) {
  return static_cast<double>(static_cast<float>(raw_keep(cell, site)));
}

// Applies layer `layer`'s dropout at `site` to one step's [B x W] block (rows in the caller's order):
// forward v / keep * mask, gradient v * mask / keep. keep == 1: no op at all.
void apply_dropout(Vec& v, int B, int W, const Cell& cell, int site, uint64_t seed, int direction, int layer, int step,
                   bool gradient) {
  const double keep = keep_of(cell, site);
  if (keep == 1.0) return;
  for (int b = 0; b < B; ++b)
    for (int q = 0; q < W; ++q) {
      const double m = dropout_mask(seed, direction, layer, site, cell.variational_recurrent, step, b, q, keep);
      double& e = v[static_cast<size_t>(b) * W + q];
      e = gradient ? e * m / keep : e / keep * m;
    }
}

// ---------------------------------------------------------------- matrices
// C[n x m] = A[n x k] @ W[k x m]
Vec matmul(const Vec& A, int n, int k, const Vec& W, int m) {
  Vec C(static_cast<size_t>(n) * m, 0.0);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < m; ++c) {
      double s = 0.0;
      for (int q = 0; q < k; ++q) s += A[static_cast<size_t>(r) * k + q] * W[static_cast<size_t>(q) * m + c];
      C[static_cast<size_t>(r) * m + c] = s;
    }
  return C;
}
// acc[k x m] += A[n x k]^T @ G[n x m]
void add_matmul_tn(Vec& acc, const Vec& A, int n, int k, const Vec& G, int m) {
  for (int q = 0; q < k; ++q)
    for (int c = 0; c < m; ++c) {
      double s = 0.0;
      for (int r = 0; r < n; ++r) s += A[static_cast<size_t>(r) * k + q] * G[static_cast<size_t>(r) * m + c];
      acc[static_cast<size_t>(q) * m + c] += s;
    }
}
// R[n x k] = G[n x m] @ W[k x m]^T
Vec matmul_nt(const Vec& G, int n, int m, const Vec& W, int k) {
  Vec R(static_cast<size_t>(n) * k, 0.0);
  for (int r = 0; r < n; ++r)
    for (int q = 0; q < k; ++q) {
      double s = 0.0;
      for (int c = 0; c < m; ++c) s += G[static_cast<size_t>(r) * m + c] * W[static_cast<size_t>(q) * m + c];
      R[static_cast<size_t>(r) * k + q] = s;
    }
  return R;
}
// acc[m] += column sums of G[n x m]
void add_colsum(Vec& acc, const Vec& G, int n, int m) {
  for (int c = 0; c < m; ++c) {
    double s = 0.0;
    for (int r = 0; r < n; ++r) s += G[static_cast<size_t>(r) * m + c];
    acc[c] += s;
  }
}
// concat([A (n x a), Bm (n x b)], axis=1)
Vec concat_cols(const Vec& A, int a, const Vec& Bm, int b, int n) {
  Vec C(static_cast<size_t>(n) * (a + b));
  for (int r = 0; r < n; ++r) {
    for (int c = 0; c < a; ++c) C[static_cast<size_t>(r) * (a + b) + c] = A[static_cast<size_t>(r) * a + c];
    for (int c = 0; c < b; ++c) C[static_cast<size_t>(r) * (a + b) + a + c] = Bm[static_cast<size_t>(r) * b + c];
  }
  return C;
}
// columns [c0, c0+w) of A (n x m)
Vec cols(const Vec& A, int n, int m, int c0, int w) {
  Vec C(static_cast<size_t>(n) * w);
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < w; ++c) C[static_cast<size_t>(r) * w + c] = A[static_cast<size_t>(r) * m + c0 + c];
  return C;
}
void add_bias(Vec& Z, int n, int m, const Vec& b) {
  for (int r = 0; r < n; ++r)
    for (int c = 0; c < m; ++c) Z[static_cast<size_t>(r) * m + c] += b[c];
}

// ---------------------------------------------------------------- params
std::vector<std::pair<std::string, std::vector<int>>> param_list(const Cell& cell, int in) {
  const int H = cell.units, O = output_width(cell);
  std::vector<std::pair<std::string, std::vector<int>>> p;
  switch (cell.kind) {
    case CellKind::BasicRNN: p = {{"kernel", {in + H, H}}, {"bias", {H}}}; break;
    case CellKind::BasicLSTM: p = {{"kernel", {in + H, 4 * H}}, {"bias", {4 * H}}}; break;
    case CellKind::LSTM:
      p = {{"kernel", {in + O, 4 * H}}, {"bias", {4 * H}}};
      if (cell.peepholes) {
        p.push_back({"w_f_diag", {H}});
        p.push_back({"w_i_diag", {H}});
        p.push_back({"w_o_diag", {H}});
      }
      if (cell.num_proj > 0) p.push_back({"projection/kernel", {H, cell.num_proj}});
      break;
    case CellKind::GRU:
      p = {{"gates/kernel", {in + H, 2 * H}},
           {"gates/bias", {2 * H}},
           {"candidate/kernel", {in + H, H}},
           {"candidate/bias", {H}}};
      break;
    case CellKind::GRUResetAfter:
      p = {{"kernel", {in, 3 * H}}, {"recurrent_kernel", {H, 3 * H}}, {"bias", {2, 3 * H}}};
      break;
  }
  return p;
}
size_t numel(const std::vector<int>& shape) {
  size_t n = 1;
  for (int d : shape) n *= static_cast<size_t>(d);
  return n;
}
Params zero_params(const Cell& cell, int in) {
  Params p;
  for (auto& [name, shape] : param_list(cell, in)) p[name] = Vec(numel(shape), 0.0);
  return p;
}

// ---------------------------------------------------------------- cells
struct LState {
  Vec c, h;  // c empty for non-LSTM cells
};

// Everything the backward of one cell step needs.
struct Cache {
  Vec x, c_prev, h_prev, xh;
  Vec y;                                       // BasicRNN
  Vec si, g, sf, c_raw, c, so, a, m_raw, m_p;  // LSTM kinds
  Vec v, rh, xrh, cand;                        // GRU (cand also GRUResetAfter)
  Vec u;                                       // GRU
  Vec zg, rg, hr_h;                            // GRUResetAfter: z, r, and h @ Rh + b_r (the h part)
};

// One cell step on all B rows. Returns the new state; the output is new.h.
LState cell_forward(const Cell& cell, const Params& w, int in, const Vec& x, const LState& prev, int B, Cache& k,
                    Pattern* pat) {
  const int H = cell.units;
  const bool relu = cell.relu;
  LState next;
  k.x = x;
  k.c_prev = prev.c;
  k.h_prev = prev.h;
  if (cell.kind == CellKind::BasicRNN) {
    k.xh = concat_cols(x, in, prev.h, H, B);
    Vec z = matmul(k.xh, B, in + H, w.at("kernel"), H);
    add_bias(z, B, H, w.at("bias"));
    k.y.resize(z.size());
    for (size_t q = 0; q < z.size(); ++q) k.y[q] = act(z[q], relu, pat);
    next.h = k.y;
    return next;
  }
  if (cell.kind == CellKind::GRU) {
    k.xh = concat_cols(x, in, prev.h, H, B);
    Vec gz = matmul(k.xh, B, in + H, w.at("gates/kernel"), 2 * H);
    add_bias(gz, B, 2 * H, w.at("gates/bias"));
    k.v.resize(gz.size());
    for (size_t q = 0; q < gz.size(); ++q) k.v[q] = sigmoid(gz[q]);
    Vec r = cols(k.v, B, 2 * H, 0, H);
    k.u = cols(k.v, B, 2 * H, H, H);
    k.rh.resize(static_cast<size_t>(B) * H);
    for (size_t q = 0; q < k.rh.size(); ++q) k.rh[q] = r[q] * prev.h[q];
    k.xrh = concat_cols(x, in, k.rh, H, B);
    Vec cz = matmul(k.xrh, B, in + H, w.at("candidate/kernel"), H);
    add_bias(cz, B, H, w.at("candidate/bias"));
    k.cand.resize(cz.size());
    for (size_t q = 0; q < cz.size(); ++q) k.cand[q] = act(cz[q], relu, pat);
    next.h.resize(static_cast<size_t>(B) * H);
    for (size_t q = 0; q < next.h.size(); ++q) next.h[q] = k.u[q] * prev.h[q] + (1.0 - k.u[q]) * k.cand[q];
    return next;
  }
  if (cell.kind == CellKind::GRUResetAfter) {
    // Keras GRUCell(reset_after=True):
    //   xz, xr, xh = split(x @ kernel + b_i);  hz, hr, hh = split(h @ recurrent_kernel + b_r)
    //   z = sigmoid(xz + hz); r = sigmoid(xr + hr); cand = act(xh + r * hh); h' = z * h + (1 - z) * cand
    const Vec& bias = w.at("bias");
    const Vec b_i(bias.begin(), bias.begin() + 3 * H), b_r(bias.begin() + 3 * H, bias.end());
    Vec mx = matmul(x, B, in, w.at("kernel"), 3 * H);
    add_bias(mx, B, 3 * H, b_i);
    Vec mh = matmul(prev.h, B, H, w.at("recurrent_kernel"), 3 * H);
    add_bias(mh, B, 3 * H, b_r);
    const size_t BH = static_cast<size_t>(B) * H;
    k.zg.assign(BH, 0);
    k.rg.assign(BH, 0);
    k.hr_h.assign(BH, 0);
    k.cand.assign(BH, 0);
    next.h.assign(BH, 0);
    for (int b = 0; b < B; ++b)
      for (int q = 0; q < H; ++q) {
        const size_t e = static_cast<size_t>(b) * H + q;
        const size_t mr = static_cast<size_t>(b) * 3 * H;
        k.zg[e] = sigmoid(mx[mr + q] + mh[mr + q]);
        k.rg[e] = sigmoid(mx[mr + H + q] + mh[mr + H + q]);
        k.hr_h[e] = mh[mr + 2 * H + q];
        k.cand[e] = act(mx[mr + 2 * H + q] + k.rg[e] * k.hr_h[e], relu, pat);
        next.h[e] = k.zg[e] * prev.h[e] + (1.0 - k.zg[e]) * k.cand[e];
      }
    return next;
  }
  // BasicLSTMCell / LSTMCell (BasicLSTM == LSTM without options).
  const bool lstm = cell.kind == CellKind::LSTM;
  const bool peep = lstm && cell.peepholes;
  const bool cclip = lstm && cell.has_cell_clip;
  const bool proj = lstm && cell.num_proj > 0;
  const bool pclip = proj && cell.has_proj_clip;
  const int O = output_width(cell);
  k.xh = concat_cols(x, in, prev.h, O, B);
  Vec z = matmul(k.xh, B, in + O, w.at("kernel"), 4 * H);
  add_bias(z, B, 4 * H, w.at("bias"));
  const size_t BH = static_cast<size_t>(B) * H;
  k.si.assign(BH, 0);
  k.g.assign(BH, 0);
  k.sf.assign(BH, 0);
  k.c_raw.assign(BH, 0);
  k.c.assign(BH, 0);
  k.so.assign(BH, 0);
  k.a.assign(BH, 0);
  k.m_raw.assign(BH, 0);
  for (int b = 0; b < B; ++b)
    for (int q = 0; q < H; ++q) {
      const size_t e = static_cast<size_t>(b) * H + q;
      const size_t zr = static_cast<size_t>(b) * 4 * H;
      const double i = z[zr + q], j = z[zr + H + q], f = z[zr + 2 * H + q], o = z[zr + 3 * H + q];
      const double cp = prev.c[e];
      double fhat = f + cell.forget_bias;
      double ihat = i;
      if (peep) {
        fhat = f + cell.forget_bias + w.at("w_f_diag")[q] * cp;
        ihat = i + w.at("w_i_diag")[q] * cp;
      }
      k.sf[e] = sigmoid(fhat);
      k.si[e] = sigmoid(ihat);
      k.g[e] = act(j, relu, pat);
      k.c_raw[e] = k.sf[e] * cp + k.si[e] * k.g[e];
      k.c[e] = cclip ? clip(k.c_raw[e], -cell.cell_clip, cell.cell_clip, pat) : k.c_raw[e];
      double ohat = o;
      if (peep) ohat = o + w.at("w_o_diag")[q] * k.c[e];
      k.so[e] = sigmoid(ohat);
      k.a[e] = act(k.c[e], relu, pat);
      k.m_raw[e] = k.so[e] * k.a[e];
    }
  next.c = k.c;
  if (proj) {
    k.m_p = matmul(k.m_raw, B, H, w.at("projection/kernel"), O);
    next.h = k.m_p;
    if (pclip)
      for (auto& m : next.h) m = clip(m, -cell.proj_clip, cell.proj_clip, pat);
  } else {
    next.h = k.m_raw;
  }
  return next;
}

// Backward of one cell step. dh = upstream of the output plus upstream of
// state.h (the same tensor); dc = upstream of state.c (LSTM kinds).
// Returns d(input) and writes d(previous state); accumulates into dw.
Vec cell_backward(const Cell& cell, const Params& w, int in, const Cache& k, const Vec& dh, const Vec& dc_next, int B,
                  LState& dprev, Params& dw) {
  const int H = cell.units;
  const bool relu = cell.relu;
  if (cell.kind == CellKind::BasicRNN) {
    Vec dz(dh.size());
    for (size_t q = 0; q < dz.size(); ++q) dz[q] = dh[q] * act_grad(k.y[q], relu);
    add_matmul_tn(dw.at("kernel"), k.xh, B, in + H, dz, H);
    add_colsum(dw.at("bias"), dz, B, H);
    Vec dxh = matmul_nt(dz, B, H, w.at("kernel"), in + H);
    dprev.h = cols(dxh, B, in + H, in, H);
    return cols(dxh, B, in + H, 0, in);
  }
  if (cell.kind == CellKind::GRU) {
    const size_t BH = static_cast<size_t>(B) * H;
    Vec du(BH), dh_a(BH), dzc(BH);
    for (size_t q = 0; q < BH; ++q) {
      du[q] = dh[q] * k.h_prev[q] - dh[q] * k.cand[q];
      dh_a[q] = dh[q] * k.u[q];
      const double dcand = dh[q] * (1.0 - k.u[q]);
      dzc[q] = dcand * act_grad(k.cand[q], relu);
    }
    add_matmul_tn(dw.at("candidate/kernel"), k.xrh, B, in + H, dzc, H);
    add_colsum(dw.at("candidate/bias"), dzc, B, H);
    Vec dxrh = matmul_nt(dzc, B, H, w.at("candidate/kernel"), in + H);
    Vec dx1 = cols(dxrh, B, in + H, 0, in);
    Vec drh = cols(dxrh, B, in + H, in, H);
    Vec dv(static_cast<size_t>(B) * 2 * H);
    Vec dh_b(BH);
    for (int b = 0; b < B; ++b)
      for (int q = 0; q < H; ++q) {
        const size_t e = static_cast<size_t>(b) * H + q;
        const size_t vr = static_cast<size_t>(b) * 2 * H;
        const double r = k.v[vr + q];
        const double dr = drh[e] * k.h_prev[e];
        dh_b[e] = drh[e] * r;
        dv[vr + q] = dr * r * (1.0 - r);
        const double u = k.v[vr + H + q];
        dv[vr + H + q] = du[e] * u * (1.0 - u);
      }
    add_matmul_tn(dw.at("gates/kernel"), k.xh, B, in + H, dv, 2 * H);
    add_colsum(dw.at("gates/bias"), dv, B, 2 * H);
    Vec dxh = matmul_nt(dv, B, 2 * H, w.at("gates/kernel"), in + H);
    Vec dx(static_cast<size_t>(B) * in);
    dprev.h.assign(BH, 0.0);
    for (int b = 0; b < B; ++b) {
      for (int q = 0; q < in; ++q)
        dx[static_cast<size_t>(b) * in + q] =
            dx1[static_cast<size_t>(b) * in + q] + dxh[static_cast<size_t>(b) * (in + H) + q];
      for (int q = 0; q < H; ++q) {
        const size_t e = static_cast<size_t>(b) * H + q;
        dprev.h[e] = dh_a[e] + dh_b[e] + dxh[static_cast<size_t>(b) * (in + H) + in + q];
      }
    }
    return dx;
  }
  if (cell.kind == CellKind::GRUResetAfter) {
    // dmx / dmh: gradients of x @ kernel + b_i and of h @ recurrent_kernel + b_r, [B, 3H] each.
    const size_t BH = static_cast<size_t>(B) * H;
    Vec dmx(static_cast<size_t>(B) * 3 * H), dmh(static_cast<size_t>(B) * 3 * H);
    Vec dh_direct(BH);
    for (int b = 0; b < B; ++b)
      for (int q = 0; q < H; ++q) {
        const size_t e = static_cast<size_t>(b) * H + q;
        const size_t mr = static_cast<size_t>(b) * 3 * H;
        const double z = k.zg[e], r = k.rg[e];
        const double dz = dh[e] * k.h_prev[e] - dh[e] * k.cand[e];
        dh_direct[e] = dh[e] * z;
        const double dcand = dh[e] * (1.0 - z);
        const double da = dcand * act_grad(k.cand[e], relu);  // d(xh + r * hh)
        const double dr = da * k.hr_h[e];
        const double dzhat = dz * z * (1.0 - z);
        const double drhat = dr * r * (1.0 - r);
        dmx[mr + q] = dzhat;
        dmx[mr + H + q] = drhat;
        dmx[mr + 2 * H + q] = da;
        dmh[mr + q] = dzhat;
        dmh[mr + H + q] = drhat;
        dmh[mr + 2 * H + q] = da * r;
      }
    add_matmul_tn(dw.at("kernel"), k.x, B, in, dmx, 3 * H);
    add_matmul_tn(dw.at("recurrent_kernel"), k.h_prev, B, H, dmh, 3 * H);
    Vec db_i(3 * static_cast<size_t>(H), 0.0), db_r(3 * static_cast<size_t>(H), 0.0);
    add_colsum(db_i, dmx, B, 3 * H);
    add_colsum(db_r, dmh, B, 3 * H);
    Vec& db = dw.at("bias");
    for (int c = 0; c < 3 * H; ++c) {
      db[c] += db_i[c];
      db[3 * H + c] += db_r[c];
    }
    Vec dhm = matmul_nt(dmh, B, 3 * H, w.at("recurrent_kernel"), H);
    dprev.h.assign(BH, 0.0);
    for (size_t q = 0; q < BH; ++q) dprev.h[q] = dh_direct[q] + dhm[q];
    return matmul_nt(dmx, B, 3 * H, w.at("kernel"), in);
  }
  const bool lstm = cell.kind == CellKind::LSTM;
  const bool peep = lstm && cell.peepholes;
  const bool cclip = lstm && cell.has_cell_clip;
  const bool proj = lstm && cell.num_proj > 0;
  const bool pclip = proj && cell.has_proj_clip;
  const int O = output_width(cell);
  const size_t BH = static_cast<size_t>(B) * H;
  Vec dm_raw;
  if (proj) {
    Vec dm_p = dh;
    if (pclip)
      for (size_t q = 0; q < dm_p.size(); ++q) dm_p[q] *= clip_pass(k.m_p[q], -cell.proj_clip, cell.proj_clip);
    add_matmul_tn(dw.at("projection/kernel"), k.m_raw, B, H, dm_p, O);
    dm_raw = matmul_nt(dm_p, B, O, w.at("projection/kernel"), H);
  } else {
    dm_raw = dh;
  }
  Vec dz(static_cast<size_t>(B) * 4 * H);
  dprev.c.assign(BH, 0.0);
  for (int b = 0; b < B; ++b)
    for (int q = 0; q < H; ++q) {
      const size_t e = static_cast<size_t>(b) * H + q;
      const size_t zr = static_cast<size_t>(b) * 4 * H;
      const double so = k.so[e], sf = k.sf[e], si = k.si[e], a = k.a[e], g = k.g[e], cp = k.c_prev[e];
      const double dohat = dm_raw[e] * a * (so * (1.0 - so));
      double dc = dc_next[e] + dm_raw[e] * so * act_grad(a, relu);
      if (peep) {
        dc += dohat * w.at("w_o_diag")[q];
        dw.at("w_o_diag")[q] += dohat * k.c[e];
      }
      const double dc_raw = cclip ? dc * clip_pass(k.c_raw[e], -cell.cell_clip, cell.cell_clip) : dc;
      const double dfhat = dc_raw * cp * (sf * (1.0 - sf));
      const double dihat = dc_raw * g * (si * (1.0 - si));
      const double dj = dc_raw * si * act_grad(g, relu);
      double dcp = dc_raw * sf;
      if (peep) {
        dcp += dfhat * w.at("w_f_diag")[q] + dihat * w.at("w_i_diag")[q];
        dw.at("w_f_diag")[q] += dfhat * cp;
        dw.at("w_i_diag")[q] += dihat * cp;
      }
      dprev.c[e] = dcp;
      dz[zr + q] = dihat;
      dz[zr + H + q] = dj;
      dz[zr + 2 * H + q] = dfhat;
      dz[zr + 3 * H + q] = dohat;
    }
  add_matmul_tn(dw.at("kernel"), k.xh, B, in + O, dz, 4 * H);
  add_colsum(dw.at("bias"), dz, B, 4 * H);
  Vec dxh = matmul_nt(dz, B, 4 * H, w.at("kernel"), in + O);
  dprev.h = cols(dxh, B, in + O, in, O);
  return cols(dxh, B, in + O, 0, in);
}

// ---------------------------------------------------------------- one direction
struct DirRun {
  int loop_bound = 0;
  std::vector<std::vector<Cache>> cache;  // [t][layer]
  Vec out;                                // time-major [T, B, O], zeros where never written
  std::vector<LState> final_state;
};

// dynamic_rnn of a MultiRNNCell stack on a time-major input (spec 1.5).
// `direction` (0 fw, 1 bw) and `seed` key the DropoutWrapper masks; step t is the loop iteration.
// cells[l] is layer first_layer + l of the masks (first_layer > 0: one layer of a
// stack_bidirectional_dynamic_rnn, run as a one-cell stack).
DirRun run_direction(const std::vector<Cell>& cells, const std::vector<Params>& w, int D, const Vec& x_tm, int T, int B,
                     const std::vector<int>* seq_len, std::vector<LState> state, Pattern* pat, int direction,
                     uint64_t seed, int first_layer) {
  DirRun run;
  const int L = static_cast<int>(cells.size());
  const int O = output_width(cells.back());
  int max_len = T;
  if (seq_len) {
    max_len = INT_MIN;  // reduce_max of an empty int32 vector is the lowest value
    for (int v : *seq_len) max_len = std::max(max_len, v);
  }
  run.loop_bound = std::min(T, std::max(1, max_len));
  run.out.assign(static_cast<size_t>(T) * B * O, 0.0);
  run.cache.resize(run.loop_bound);
  for (int t = 0; t < run.loop_bound; ++t) {
    run.cache[t].resize(L);
    Vec inp(x_tm.begin() + static_cast<size_t>(t) * B * D, x_tm.begin() + static_cast<size_t>(t + 1) * B * D);
    std::vector<LState> new_state(L);
    int in = D;
    for (int l = 0; l < L; ++l) {
      // DropoutWrapper: the cell reads its input dropped; the undropped input stays for the residual.
      Vec cell_in = inp;
      apply_dropout(cell_in, B, in, cells[l], kSiteInput, seed, direction, first_layer + l, t, false);
      new_state[l] = cell_forward(cells[l], w[l], in, cell_in, state[l], B, run.cache[t][l], pat);
      Vec layer_out = new_state[l].h;  // the cell's output is its new h, undropped by the state mask
      // state_keep_prob: the new state's h (not c) / keep * mask, before dynamic_rnn's copy-through,
      // so the next step and the final state see it dropped; rows past their length keep the
      // previous state below. Then the output mask, independent of it.
      apply_dropout(new_state[l].h, B, state_width(cells[l], "h"), cells[l], kSiteState, seed, direction,
                    first_layer + l, t, false);
      apply_dropout(layer_out, B, output_width(cells[l]), cells[l], kSiteOutput, seed, direction, first_layer + l, t,
                    false);
      if (cells[l].residual)  // ResidualWrapper(DropoutWrapper(cell)): inputs + dropped cell output
        for (size_t q = 0; q < layer_out.size(); ++q) layer_out[q] += inp[q];
      inp = std::move(layer_out);  // the next layer's input
      in = output_width(cells[l]);
    }
    Vec new_out = inp;
    if (seq_len) {
      for (int b = 0; b < B; ++b) {
        const bool done = t >= (*seq_len)[b];
        if (!done) continue;
        for (int q = 0; q < O; ++q) new_out[static_cast<size_t>(b) * O + q] = 0.0;  // where(done, zeros, out)
        for (int l = 0; l < L; ++l) {                                               // where(done, state, new)
          const int Hc = state_width(cells[l], "c"), Hh = state_width(cells[l], "h");
          for (int q = 0; q < Hc; ++q)
            new_state[l].c[static_cast<size_t>(b) * Hc + q] = state[l].c[static_cast<size_t>(b) * Hc + q];
          for (int q = 0; q < Hh; ++q)
            new_state[l].h[static_cast<size_t>(b) * Hh + q] = state[l].h[static_cast<size_t>(b) * Hh + q];
        }
      }
    }
    std::copy(new_out.begin(), new_out.end(), run.out.begin() + static_cast<size_t>(t) * B * O);
    state = std::move(new_state);
  }
  run.final_state = std::move(state);
  return run;
}

struct DirGrad {
  Vec dx_tm;
  std::vector<LState> dinit;
  std::vector<Params> dw;
};

// Masked BPTT of spec 3.1 over a finished run (of run_direction with the same first_layer).
DirGrad backward_direction(const std::vector<Cell>& cells, const std::vector<Params>& w, int D, int T, int B,
                           const std::vector<int>* seq_len, const DirRun& run, const Vec& dout_tm,
                           std::vector<LState> g, int direction, uint64_t seed, int first_layer) {
  const int L = static_cast<int>(cells.size());
  const int O = output_width(cells.back());
  DirGrad res;
  res.dx_tm.assign(static_cast<size_t>(T) * B * D, 0.0);
  for (int l = 0; l < L; ++l) res.dw.push_back(zero_params(cells[l], layer_input_width(cells, l, D)));
  for (int t = run.loop_bound - 1; t >= 0; --t) {
    std::vector<char> valid(B, 1);
    if (seq_len)
      for (int b = 0; b < B; ++b) valid[b] = t < (*seq_len)[b];
    Vec gy(static_cast<size_t>(B) * O, 0.0);
    for (int b = 0; b < B; ++b)
      if (valid[b])
        for (int q = 0; q < O; ++q)
          gy[static_cast<size_t>(b) * O + q] = dout_tm[(static_cast<size_t>(t) * B + b) * O + q];
    std::vector<LState> gs_new = g, gs_pass = g;
    for (int l = 0; l < L; ++l) {
      const int Hc = state_width(cells[l], "c"), Hh = state_width(cells[l], "h");
      for (int b = 0; b < B; ++b) {
        for (int q = 0; q < Hc; ++q) {
          const size_t e = static_cast<size_t>(b) * Hc + q;
          (valid[b] ? gs_pass[l].c[e] : gs_new[l].c[e]) = 0.0;
        }
        for (int q = 0; q < Hh; ++q) {
          const size_t e = static_cast<size_t>(b) * Hh + q;
          (valid[b] ? gs_pass[l].h[e] : gs_new[l].h[e]) = 0.0;
        }
      }
    }
    Vec d_above = gy;  // upstream of the stack's output
    for (int l = L - 1; l >= 0; --l) {
      const int in = layer_input_width(cells, l, D);
      // The layer output's gradient reaches the cell's output through the output mask; the state's
      // upstream reaches the cell's new h through the state mask (state_keep_prob; zero at rows that
      // did not run the step), its c directly.
      Vec dh = d_above;
      apply_dropout(dh, B, output_width(cells[l]), cells[l], kSiteOutput, seed, direction, first_layer + l, t, true);
      Vec dstate_h = gs_new[l].h;
      apply_dropout(dstate_h, B, state_width(cells[l], "h"), cells[l], kSiteState, seed, direction, first_layer + l, t,
                    true);
      for (size_t q = 0; q < dh.size(); ++q) dh[q] += dstate_h[q];
      LState dprev;
      Vec d_in = cell_backward(cells[l], w[l], in, run.cache[t][l], dh, gs_new[l].c, B, dprev, res.dw[l]);
      // Through the input mask.
      apply_dropout(d_in, B, in, cells[l], kSiteInput, seed, direction, first_layer + l, t, true);
      // ResidualWrapper's identity path: d(inputs) gets d(layer output) too (not the state's upstream),
      // undropped: the residual adds the undropped input.
      if (cells[l].residual)
        for (size_t q = 0; q < d_in.size(); ++q) d_in[q] += d_above[q];
      d_above = std::move(d_in);
      for (size_t q = 0; q < dprev.c.size(); ++q) dprev.c[q] += gs_pass[l].c[q];
      for (size_t q = 0; q < dprev.h.size(); ++q) dprev.h[q] += gs_pass[l].h[q];
      g[l] = std::move(dprev);
    }
    std::copy(d_above.begin(), d_above.end(), res.dx_tm.begin() + static_cast<size_t>(t) * B * D);
  }
  res.dinit = std::move(g);
  return res;
}

// ---------------------------------------------------------------- layout
// user layout -> time-major [T, B, W]
Vec to_time_major(const Vec& v, int T, int B, int W, bool time_major) {
  if (time_major) return v;
  Vec r(v.size());
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int q = 0; q < W; ++q)
        r[(static_cast<size_t>(t) * B + b) * W + q] = v[(static_cast<size_t>(b) * T + t) * W + q];
  return r;
}
Vec from_time_major(const Vec& v, int T, int B, int W, bool time_major) {
  if (time_major) return v;
  Vec r(v.size());
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b)
      for (int q = 0; q < W; ++q)
        r[(static_cast<size_t>(b) * T + t) * W + q] = v[(static_cast<size_t>(t) * B + b) * W + q];
  return r;
}
// ReverseSequence on a time-major [T, B, W] tensor (or a full time reversal
// without lengths). An involution, and its own gradient.
Vec reverse_seq(const Vec& v, int T, int B, int W, const std::vector<int>* seq_len) {
  Vec r(v.size());
  for (int t = 0; t < T; ++t)
    for (int b = 0; b < B; ++b) {
      int src = T - 1 - t;
      if (seq_len) {
        const int len = (*seq_len)[b];
        src = t < len ? len - 1 - t : t;
      }
      for (int q = 0; q < W; ++q)
        r[(static_cast<size_t>(t) * B + b) * W + q] = v[(static_cast<size_t>(src) * B + b) * W + q];
    }
  return r;
}

std::string key(const char* dir, int layer, const std::string& leaf) {
  return std::string(dir) + "/" + std::to_string(layer) + "/" + leaf;
}

std::vector<LState> initial_states(const Problem& p, const std::vector<Cell>& cells, const char* dir) {
  std::vector<LState> s(cells.size());
  for (size_t l = 0; l < cells.size(); ++l) {
    for (const std::string& leaf : leaves(cells[l])) {
      Vec& dst = leaf == "c" ? s[l].c : s[l].h;
      const size_t n = static_cast<size_t>(p.B) * state_width(cells[l], leaf.c_str());
      if (p.has_initial_state)
        dst = p.init.at(key(dir, static_cast<int>(l), leaf));
      else
        dst.assign(n, 0.0);
    }
  }
  return s;
}

void export_states(const std::vector<LState>& s, const std::vector<Cell>& cells, const char* dir, Named& out) {
  for (size_t l = 0; l < cells.size(); ++l)
    for (const std::string& leaf : leaves(cells[l]))
      out[key(dir, static_cast<int>(l), leaf)] = leaf == "c" ? s[l].c : s[l].h;
}

// The cells and parameters of one direction (0: fw, 1: bw) of the problem; their input widths are
// layer_input_width(p, direction, l).
std::string check_stack(const Problem& p, int direction) {
  const std::vector<Cell>& cells = direction == 0 ? p.fw : p.bw;
  const std::vector<Params>& w = direction == 0 ? p.w_fw : p.w_bw;
  const char* dir = direction == 0 ? "fw" : "bw";
  std::ostringstream m;
  if (cells.empty()) {
    m << dir << ": MultiRNNCell needs at least one cell";
    return m.str();
  }
  if (w.size() != cells.size()) {
    m << dir << ": " << w.size() << " parameter sets for " << cells.size() << " layers";
    return m.str();
  }
  for (size_t l = 0; l < cells.size(); ++l) {
    const Cell& c = cells[l];
    if (c.units <= 0) {
      m << dir << "/" << l << ": units must be positive";
      return m.str();
    }
    if (c.num_proj < 0) {
      m << dir << "/" << l << ": num_proj must be >= 0";
      return m.str();
    }
    if (c.kind != CellKind::LSTM && (c.peepholes || c.has_cell_clip || c.num_proj > 0 || c.has_proj_clip)) {
      m << dir << "/" << l << ": peepholes/cell_clip/num_proj/proj_clip need kind LSTM";
      return m.str();
    }
    for (int site : {kSiteInput, kSiteOutput, kSiteState}) {
      const double keep = raw_keep(c, site);
      if (!(keep > 0.0 && keep <= 1.0 && keep_of(c, site) > 0.0)) {  // NaN too; > 0 in float32 as well
        m << dir << "/" << l << ": " << keep_name(site) << " " << keep << " not in (0, 1]";
        return m.str();
      }
    }
    const int in = layer_input_width(p, direction, static_cast<int>(l));
    if (c.residual && in != output_width(c)) {
      m << dir << "/" << l << ": residual needs input width " << in << " == output width " << output_width(c);
      return m.str();
    }
    auto shapes = param_list(c, in);
    if (w[l].size() != shapes.size()) {
      m << dir << "/" << l << ": expected " << shapes.size() << " parameters, got " << w[l].size();
      return m.str();
    }
    for (auto& [name, shape] : shapes) {
      auto it = w[l].find(name);
      if (it == w[l].end()) {
        m << dir << "/" << l << ": missing parameter " << name;
        return m.str();
      }
      if (it->second.size() != numel(shape)) {
        m << dir << "/" << l << "/" << name << ": size " << it->second.size() << ", expected " << numel(shape);
        return m.str();
      }
    }
  }
  return "";
}

// ---------------------------------------------------------------- stack_bidirectional_dynamic_rnn
// tf.contrib.rnn.stack_bidirectional_dynamic_rnn(fw, bw, inputs, ...): for each layer l,
//   outputs, (state_fw, state_bw) = bidirectional_dynamic_rnn(fw[l], bw[l], prev_layer, ...)
//   prev_layer = concat(outputs, 2)
// with prev_layer = inputs for layer 0. Each direction of a layer is a one-cell dynamic_rnn (the masks
// of layer l); its outputs are the masked ones (zeros past each row's length, the bw direction's
// reversed back to time order), which is what the next layer reads.
struct StackedRun {
  std::vector<DirRun> fw, bw;  // [layer]
};

// A valid (check()ed) stack_bidirectional problem.
Forward stacked_forward(const Problem& p, Pattern* pat, StackedRun* runs) {
  const std::vector<int>* sl = p.has_seq_len ? &p.seq_len : nullptr;
  const int L = static_cast<int>(p.fw.size());
  const std::vector<LState> init_fw = initial_states(p, p.fw, "fw"), init_bw = initial_states(p, p.bw, "bw");
  std::vector<LState> final_fw(L), final_bw(L);
  Vec in_tm = to_time_major(p.x, p.T, p.B, p.D, p.time_major);  // layer l's input, time-major
  Vec out_fw_tm, out_bw_tm;
  for (int l = 0; l < L; ++l) {
    const int in = layer_input_width(p, 0, l);
    const int Of = output_width(p.fw[l]), Ob = output_width(p.bw[l]);
    DirRun fw = run_direction({p.fw[l]}, {p.w_fw[l]}, in, in_tm, p.T, p.B, sl, {init_fw[l]}, pat, 0, p.dropout_seed, l);
    const Vec in_rev = reverse_seq(in_tm, p.T, p.B, in, sl);
    DirRun bw =
        run_direction({p.bw[l]}, {p.w_bw[l]}, in, in_rev, p.T, p.B, sl, {init_bw[l]}, pat, 1, p.dropout_seed, l);
    out_fw_tm = fw.out;
    out_bw_tm = reverse_seq(bw.out, p.T, p.B, Ob, sl);
    final_fw[l] = fw.final_state[0];
    final_bw[l] = bw.final_state[0];
    // concat([out_fw, out_bw], axis=2): per (t, b) row, the fw columns then the bw columns.
    in_tm = concat_cols(out_fw_tm, Of, out_bw_tm, Ob, p.T * p.B);
    if (runs) {
      runs->fw.push_back(std::move(fw));
      runs->bw.push_back(std::move(bw));
    }
  }
  Forward f;
  f.out_fw = from_time_major(out_fw_tm, p.T, p.B, output_width(p.fw.back()), p.time_major);
  f.out_bw = from_time_major(out_bw_tm, p.T, p.B, output_width(p.bw.back()), p.time_major);
  export_states(final_fw, p.fw, "fw", f.final_state);
  export_states(final_bw, p.bw, "bw", f.final_state);
  return f;
}

Forward forward_impl(const Problem& p, Pattern* pat, DirRun* fw_run, DirRun* bw_run) {
  const std::string err = check(p);
  if (!err.empty()) throw std::invalid_argument("ref::forward: " + err);
  if (p.stack_bidirectional) return stacked_forward(p, pat, nullptr);
  Forward f;
  const std::vector<int>* sl = p.has_seq_len ? &p.seq_len : nullptr;
  const Vec x_tm = to_time_major(p.x, p.T, p.B, p.D, p.time_major);
  DirRun fw =
      run_direction(p.fw, p.w_fw, p.D, x_tm, p.T, p.B, sl, initial_states(p, p.fw, "fw"), pat, 0, p.dropout_seed, 0);
  f.out_fw = from_time_major(fw.out, p.T, p.B, output_width(p.fw.back()), p.time_major);
  export_states(fw.final_state, p.fw, "fw", f.final_state);
  if (!p.bw.empty()) {
    const Vec x_rev = reverse_seq(x_tm, p.T, p.B, p.D, sl);
    DirRun bw =
        run_direction(p.bw, p.w_bw, p.D, x_rev, p.T, p.B, sl, initial_states(p, p.bw, "bw"), pat, 1, p.dropout_seed, 0);
    const int O = output_width(p.bw.back());
    f.out_bw = from_time_major(reverse_seq(bw.out, p.T, p.B, O, sl), p.T, p.B, O, p.time_major);
    export_states(bw.final_state, p.bw, "bw", f.final_state);
    if (bw_run) *bw_run = std::move(bw);
  }
  if (fw_run) *fw_run = std::move(fw);
  return f;
}

std::vector<LState> upstream_states(const Problem& p, const Upstream& u, const std::vector<Cell>& cells,
                                    const char* dir) {
  std::vector<LState> s(cells.size());
  for (size_t l = 0; l < cells.size(); ++l)
    for (const std::string& leaf : leaves(cells[l])) {
      Vec& dst = leaf == "c" ? s[l].c : s[l].h;
      const size_t n = static_cast<size_t>(p.B) * state_width(cells[l], leaf.c_str());
      auto it = u.dfinal.find(key(dir, static_cast<int>(l), leaf));
      if (it == u.dfinal.end() || it->second.empty()) {
        dst.assign(n, 0.0);
      } else {
        if (it->second.size() != n)
          throw std::invalid_argument("ref::backward: dfinal " + it->first + " has the wrong size");
        dst = it->second;
      }
    }
  return s;
}

Vec upstream_out(const Problem& p, const Vec& d, const std::vector<Cell>& cells, const char* what) {
  const size_t n = static_cast<size_t>(p.T) * p.B * output_width(cells.back());
  if (d.empty()) return Vec(n, 0.0);
  if (d.size() != n) throw std::invalid_argument(std::string("ref::backward: ") + what + " has the wrong size");
  return to_time_major(d, p.T, p.B, output_width(cells.back()), p.time_major);
}

// Backward of stacked_forward: per layer, top first, the masked BPTT of both directions (as for a
// one-layer bidirectional problem); layer l's input gradient, split into its fw and bw column blocks,
// is the output gradient of layer l - 1's two directions. The final states' upstream of layer l
// reaches layer l only.
Gradients stacked_backward(const Problem& p, const Upstream& u) {
  const std::string err = check(p);
  if (!err.empty()) throw std::invalid_argument("ref::backward: " + err);
  StackedRun runs;
  stacked_forward(p, nullptr, &runs);
  const std::vector<int>* sl = p.has_seq_len ? &p.seq_len : nullptr;
  const int L = static_cast<int>(p.fw.size());
  const std::vector<LState> dfinal_fw = upstream_states(p, u, p.fw, "fw"),
                            dfinal_bw = upstream_states(p, u, p.bw, "bw");
  std::vector<LState> dinit_fw(L), dinit_bw(L);
  Gradients g;
  g.dw_fw.resize(L);
  g.dw_bw.resize(L);
  // The gradients of layer l's two outputs (time-major, time order), the top layer's from the upstream.
  Vec dout_fw_tm = upstream_out(p, u.dout_fw, p.fw, "dout_fw");
  Vec dout_bw_tm = upstream_out(p, u.dout_bw, p.bw, "dout_bw");
  Vec d_in;  // layer l's input gradient, time-major
  for (int l = L - 1; l >= 0; --l) {
    const int in = layer_input_width(p, 0, l);
    const int Ob = output_width(p.bw[l]);
    DirGrad gf = backward_direction({p.fw[l]}, {p.w_fw[l]}, in, p.T, p.B, sl, runs.fw[l], dout_fw_tm, {dfinal_fw[l]}, 0,
                                    p.dropout_seed, l);
    const Vec dtmp = reverse_seq(dout_bw_tm, p.T, p.B, Ob, sl);
    DirGrad gb = backward_direction({p.bw[l]}, {p.w_bw[l]}, in, p.T, p.B, sl, runs.bw[l], dtmp, {dfinal_bw[l]}, 1,
                                    p.dropout_seed, l);
    d_in = gf.dx_tm;
    const Vec d_in_b = reverse_seq(gb.dx_tm, p.T, p.B, in, sl);
    for (size_t q = 0; q < d_in.size(); ++q) d_in[q] += d_in_b[q];
    dinit_fw[l] = std::move(gf.dinit[0]);
    dinit_bw[l] = std::move(gb.dinit[0]);
    g.dw_fw[l] = std::move(gf.dw[0]);
    g.dw_bw[l] = std::move(gb.dw[0]);
    if (l > 0) {  // the gradient of concat([out_fw, out_bw], axis=2) of layer l - 1: its two column blocks
      const int Of_below = output_width(p.fw[l - 1]), Ob_below = output_width(p.bw[l - 1]);
      dout_fw_tm = cols(d_in, p.T * p.B, in, 0, Of_below);
      dout_bw_tm = cols(d_in, p.T * p.B, in, Of_below, Ob_below);
    }
  }
  export_states(dinit_fw, p.fw, "fw", g.dinit);
  export_states(dinit_bw, p.bw, "bw", g.dinit);
  for (const auto& [k, v] : u.dfinal)
    if (!g.dinit.count(k)) throw std::invalid_argument("ref::backward: unknown dfinal leaf " + k);
  g.dx = from_time_major(d_in, p.T, p.B, p.D, p.time_major);
  return g;
}

}  // namespace

// ================================================================ public API
std::array<uint32_t, 4> philox4x32_10(const std::array<uint32_t, 4>& counter, uint32_t key0, uint32_t key1) {
  // Random123's Philox4x32 with R = 10: each round two 32 x 32 -> 64-bit products,
  //   (c0, c1, c2, c3) <- (hi(M1 c2) ^ c1 ^ k0, lo(M1 c2), hi(M0 c0) ^ c3 ^ k1, lo(M0 c0)),
  // and the key advanced by the Weyl constants before every round but the first.
  constexpr uint64_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  std::array<uint32_t, 4> c = counter;
  std::array<uint32_t, 2> k = {key0, key1};
  for (int round = 1; round <= 10; ++round) {
    const uint64_t p0 = kM0 * c[0], p1 = kM1 * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1 & 0xFFFFFFFFu),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0 & 0xFFFFFFFFu)};
    k[0] += kW0;
    k[1] += kW1;
  }
  return c;
}

double dropout_uniform(uint64_t seed, int direction, int layer, int site, bool variational, int64_t step, int64_t row,
                       int64_t col) {
  // Sites 0 and 1: 4 * layer + 2 * direction + site; the state site (2): the top bit over
  // 2 * layer + direction, apart from the others' streams for every layer < 2^29.
  const uint32_t stream = site == 2 ? (0x80000000u | static_cast<uint32_t>(2 * int64_t(layer) + direction))
                                    : static_cast<uint32_t>(4 * int64_t(layer) + 2 * direction + site);
  std::array<uint32_t, 4> counter = {static_cast<uint32_t>(col), static_cast<uint32_t>(row),
                                     static_cast<uint32_t>(step), stream};
  if (variational) counter[1] = counter[2] = 0;  // one mask for every row and step
  const std::array<uint32_t, 4> r =
      philox4x32_10(counter, static_cast<uint32_t>(seed & 0xFFFFFFFFu), static_cast<uint32_t>(seed >> 32));
  return std::ldexp(static_cast<double>(r[0] >> 8), -24);  // top 24 bits: [0, 1), exact in float
}

double dropout_mask(uint64_t seed, int direction, int layer, int site, bool variational, int64_t step, int64_t row,
                    int64_t col, double keep) {
  return std::floor(keep + dropout_uniform(seed, direction, layer, site, variational, step, row, col));
}

int state_width(const Cell& c, const char* leaf) {
  const std::string l = leaf;
  if (l == "h") return is_lstm(c.kind) ? output_width(c) : c.units;
  if (l == "c") return is_lstm(c.kind) ? c.units : 0;
  return 0;
}

std::vector<std::string> leaves(const Cell& c) {
  if (is_lstm(c.kind)) return {"c", "h"};
  return {"h"};
}

int output_width(const Cell& c) {
  return (c.kind == CellKind::LSTM && c.num_proj > 0) ? c.num_proj : c.units;
}

int layer_input_width(const std::vector<Cell>& stack, int layer, int D) {
  return layer == 0 ? D : output_width(stack[layer - 1]);
}

int layer_input_width(const Problem& p, int direction, int layer) {
  if (direction != 0 && direction != 1) throw std::out_of_range("ref::layer_input_width: direction must be 0 or 1");
  const std::vector<Cell>& stack = direction == 0 ? p.fw : p.bw;
  if (layer < 0 || layer >= static_cast<int>(stack.size()))
    throw std::out_of_range("ref::layer_input_width: no layer " + std::to_string(layer) + " in " +
                            (direction == 0 ? "fw" : "bw"));
  if (!p.stack_bidirectional || layer == 0) return layer_input_width(stack, layer, p.D);
  if (layer >= static_cast<int>(p.fw.size()) || layer >= static_cast<int>(p.bw.size()))
    throw std::out_of_range("ref::layer_input_width: stack_bidirectional layer " + std::to_string(layer) +
                            " lacks a layer below in fw or bw");
  return output_width(p.fw[layer - 1]) + output_width(p.bw[layer - 1]);
}

std::map<std::string, std::vector<int>> param_shapes(const Cell& c, int input_width) {
  std::map<std::string, std::vector<int>> m;
  for (auto& [name, shape] : param_list(c, input_width)) m[name] = shape;
  return m;
}

Params random_params(const Cell& c, int input_width, std::mt19937_64& rng, double scale) {
  Params p;
  for (auto& [name, shape] : param_list(c, input_width)) {
    Vec v(numel(shape));
    for (double& e : v) {
      const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
      e = -scale + 2.0 * scale * u;
    }
    p[name] = std::move(v);
  }
  return p;
}

std::string check(const Problem& p) {
  std::ostringstream m;
  if (p.T < 0 || p.B < 0 || p.D < 0) return "T, B and D must be >= 0";
  if (p.x.size() != static_cast<size_t>(p.T) * p.B * p.D) {
    m << "x has " << p.x.size() << " values, expected T*B*D = " << static_cast<size_t>(p.T) * p.B * p.D;
    return m.str();
  }
  if (p.stack_bidirectional) {  // stack_bidirectional_dynamic_rnn's own ValueErrors
    if (p.fw.empty()) return "stack_bidirectional: fw has no cells (Must specify at least one fw cell)";
    if (p.bw.empty()) return "stack_bidirectional: bw has no cells (Must specify at least one bw cell)";
    if (p.fw.size() != p.bw.size()) {
      m << "stack_bidirectional: fw has " << p.fw.size() << " cells, bw has " << p.bw.size()
        << " (Forward and Backward cells must have the same depth)";
      return m.str();
    }
  }
  std::string e = check_stack(p, 0);
  if (!e.empty()) return e;
  const bool bidi = !p.bw.empty() || !p.w_bw.empty();
  if (bidi) {
    e = check_stack(p, 1);
    if (!e.empty()) return e;
  }
  if (p.has_seq_len) {
    if (p.seq_len.size() != static_cast<size_t>(p.B)) {
      m << "sequence_length has " << p.seq_len.size() << " values, expected batch size " << p.B;
      return m.str();
    }
    if (bidi)
      for (size_t b = 0; b < p.seq_len.size(); ++b) {
        if (p.seq_len[b] < 0) {
          m << "seq_lens(" << b << ") < 0";
          return m.str();
        }
        if (p.seq_len[b] > p.T) {
          m << "seq_lens(" << b << ") > input.dims(seq_dim)";
          return m.str();
        }
      }
  }
  if (p.has_initial_state) {
    size_t expected = 0;
    for (int d = 0; d < (bidi ? 2 : 1); ++d) {
      const std::vector<Cell>& cells = d == 0 ? p.fw : p.bw;
      const char* dir = d == 0 ? "fw" : "bw";
      for (size_t l = 0; l < cells.size(); ++l)
        for (const std::string& leaf : leaves(cells[l])) {
          ++expected;
          const std::string k = key(dir, static_cast<int>(l), leaf);
          auto it = p.init.find(k);
          if (it == p.init.end()) return "initial state leaf " + k + " missing";
          const size_t n = static_cast<size_t>(p.B) * state_width(cells[l], leaf.c_str());
          if (it->second.size() != n) {
            m << "initial state leaf " << k << " has " << it->second.size() << " values, expected " << n;
            return m.str();
          }
        }
    }
    if (p.init.size() != expected) return "initial state has unknown leaves";
  }
  return "";
}

Forward forward(const Problem& p) {
  return forward_impl(p, nullptr, nullptr, nullptr);
}

Forward forward_with_pattern(const Problem& p, std::vector<int8_t>* pattern) {
  return forward_impl(p, pattern, nullptr, nullptr);
}

Gradients backward(const Problem& p, const Upstream& u) {
  if (p.stack_bidirectional) return stacked_backward(p, u);
  DirRun fw, bw;
  forward_impl(p, nullptr, &fw, &bw);
  const std::vector<int>* sl = p.has_seq_len ? &p.seq_len : nullptr;
  Gradients g;
  DirGrad gf = backward_direction(p.fw, p.w_fw, p.D, p.T, p.B, sl, fw, upstream_out(p, u.dout_fw, p.fw, "dout_fw"),
                                  upstream_states(p, u, p.fw, "fw"), 0, p.dropout_seed, 0);
  Vec dx_tm = gf.dx_tm;
  export_states(gf.dinit, p.fw, "fw", g.dinit);
  g.dw_fw = std::move(gf.dw);
  if (!p.bw.empty()) {
    const int O = output_width(p.bw.back());
    const Vec dtmp = reverse_seq(upstream_out(p, u.dout_bw, p.bw, "dout_bw"), p.T, p.B, O, sl);
    DirGrad gb = backward_direction(p.bw, p.w_bw, p.D, p.T, p.B, sl, bw, dtmp, upstream_states(p, u, p.bw, "bw"), 1,
                                    p.dropout_seed, 0);
    const Vec dx_b = reverse_seq(gb.dx_tm, p.T, p.B, p.D, sl);
    for (size_t q = 0; q < dx_tm.size(); ++q) dx_tm[q] += dx_b[q];
    export_states(gb.dinit, p.bw, "bw", g.dinit);
    g.dw_bw = std::move(gb.dw);
  } else if (!u.dout_bw.empty()) {
    throw std::invalid_argument("ref::backward: dout_bw given for a unidirectional problem");
  }
  for (const auto& [k, v] : u.dfinal)
    if (!g.dinit.count(k)) throw std::invalid_argument("ref::backward: unknown dfinal leaf " + k);
  g.dx = from_time_major(dx_tm, p.T, p.B, p.D, p.time_major);
  return g;
}

}  // namespace ref
