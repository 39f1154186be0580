#include "host/model.h"

#include <cmath>
#include <sstream>

#include "host/checked_math.h"
#include "host/element_types.h"
#include "host/status_macros.h"

namespace dynrnn {
namespace {

const char* cell_scope_name(CellKind kind) {
  switch (kind) {
    case CellKind::kBasicRNN: return "basic_rnn_cell";
    case CellKind::kBasicLSTM: return "basic_lstm_cell";
    case CellKind::kLSTM: return "lstm_cell";
    case CellKind::kGRU:
    case CellKind::kGRUResetAfter: return "gru_cell";  // TF's and Keras' GRUCell scopes
  }
  return "?";
}

Status invalid(const std::string& msg) {
  return Status(StatusCode::kInvalidValue, msg);
}

/// Widths above this are refused, so that products of a few widths with T and B are checked, not wrapped.
constexpr int64_t kMaxWidth = int64_t(1) << 40;

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

Status validate_cell(const CellSpec& c, const std::string& where) {
  const int kind = static_cast<int>(c.kind);
  if (kind < 0 || kind > static_cast<int>(CellKind::kGRUResetAfter)) {
    return invalid(where + ".kind is " + std::to_string(kind) + "; expected a CellKind (0..4)");
  }
  if (c.num_units <= 0) {
    return invalid(where + ".num_units is " + std::to_string(c.num_units) + "; expected > 0");
  }
  const int act = static_cast<int>(c.activation);
  if (act < 0 || act > static_cast<int>(Activation::kRelu)) {
    return invalid(where + ".activation is " + std::to_string(act) + "; expected kTanh (0) or kRelu (1)");
  }
  if (c.num_units > kMaxWidth) {
    return invalid(where + ".num_units is " + std::to_string(c.num_units) + "; expected at most " +
                   std::to_string(kMaxWidth));
  }
  if (!std::isfinite(c.forget_bias)) {
    return invalid(where + ".forget_bias is " + num(c.forget_bias) + "; expected a finite value");
  }
  const bool lstm = c.kind == CellKind::kLSTM;
  const bool any_lstm = lstm || c.kind == CellKind::kBasicLSTM;
  if (!any_lstm && c.forget_bias != 1.0) {
    return invalid(where + ".forget_bias is " + num(c.forget_bias) +
                   "; expected the default 1.0: only LSTM cells have a forget gate");
  }
  const char* lstm_only = "; expected the default: this option exists only for CellKind::kLSTM";
  if (!lstm && c.use_peepholes) return invalid(where + ".use_peepholes is true" + lstm_only);
  if (!lstm && c.cell_clip) return invalid(where + ".cell_clip is " + num(*c.cell_clip) + lstm_only);
  if (!lstm && c.num_proj != 0) return invalid(where + ".num_proj is " + std::to_string(c.num_proj) + lstm_only);
  if (!lstm && c.proj_clip) return invalid(where + ".proj_clip is " + num(*c.proj_clip) + lstm_only);
  if (c.cell_clip && !(*c.cell_clip >= 0.0 && std::isfinite(*c.cell_clip))) {
    return invalid(where + ".cell_clip is " + num(*c.cell_clip) + "; expected a finite value >= 0");
  }
  if (c.num_proj < 0 || c.num_proj > kMaxWidth) {
    return invalid(where + ".num_proj is " + std::to_string(c.num_proj) +
                   "; expected >= 0 (0 = no projection) and <= " + std::to_string(kMaxWidth));
  }
  if (c.proj_clip) {
    if (c.num_proj == 0) {
      return invalid(where + ".proj_clip is " + num(*c.proj_clip) +
                     " but num_proj is 0 (no projection); expected proj_clip only with num_proj > 0");
    }
    if (!(*c.proj_clip >= 0.0 && std::isfinite(*c.proj_clip))) {
      return invalid(where + ".proj_clip is " + num(*c.proj_clip) + "; expected a finite value >= 0");
    }
  }
  const double keeps[3] = {c.input_keep_prob, c.output_keep_prob, c.state_keep_prob};
  const char* keep_names[3] = {".input_keep_prob", ".output_keep_prob", ".state_keep_prob"};
  for (int i = 0; i < 3; ++i) {
    // TF computes with the float32-rounded value, which must stay above 0 too (it divides by it).
    if (!(keeps[i] > 0.0 && keeps[i] <= 1.0 && static_cast<float>(keeps[i]) > 0.0f)) {
      return invalid(where + keep_names[i] + " is " + num(keeps[i]) +
                     "; expected a probability in (0, 1], above 0 in float32 as well (1 = no dropout)");
    }
  }
  return Status::ok();
}

/// v rounded to float32, as TF's DropoutWrapper holds a keep probability. Through a volatile: GCC
/// 12.2's -O2 SLP vectorizer drops the rounding of two adjacent double(float(v)) casts (it returned
/// 0.7 unrounded here; Dropout.KeepProbabilitiesAreTheirFloat32Rounding catches it).
double float32_value(double v) {
  volatile float f = static_cast<float>(v);
  return f;
}

/// Appends a parameter; false when its size or the running total overflows 64 bits.
bool add_param(Model* m, const std::string& prefix, const LayerModel& l, const std::string& local,
               std::vector<int64_t> shape, int64_t* offset_field) {
  ParamInfo p;
  p.local_name = local;
  p.name = prefix + local;
  p.direction = l.direction;
  p.layer = l.layer;
  p.shape = std::move(shape);
  p.count = 1;
  for (int64_t d : p.shape) {
    if (!checked_mul(p.count, d, &p.count)) return false;
  }
  p.offset = m->param_count;
  if (!checked_add(m->param_count, p.count, &m->param_count)) return false;
  *offset_field = p.offset;
  m->params.push_back(std::move(p));
  return true;
}

}  // namespace

Status build_model(const RnnSpec& spec, Model* model) {
  Model m;
  m.spec = spec;
  const int dtype = static_cast<int>(spec.dtype);
  if (dtype < 0 || dtype > static_cast<int>(DataType::kFloat16)) {
    return Status(StatusCode::kNotSupported,
                  "spec.dtype is " + std::to_string(dtype) +
                      "; supported: kFloat32 (0), kFloat64 (1), kBFloat16 (2), kFloat16 (3)");
  }
  m.elem_bytes = element_bytes(spec.dtype);
  m.c_elems = static_cast<int64_t>(compute_bytes(spec.dtype) / m.elem_bytes);
  const int algorithm = static_cast<int>(spec.algorithm);
  if (algorithm < 0 || algorithm > static_cast<int>(RecurrentAlgorithm::kPersistent)) {
    return invalid("spec.algorithm is " + std::to_string(algorithm) + "; expected kStandard (0) or kPersistent (1)");
  }
  const int math = static_cast<int>(spec.math);
  if (math < 0 || math > static_cast<int>(MathMode::kTF32)) {
    return invalid("spec.math is " + std::to_string(math) + "; expected kDefault (0) or kTF32 (1)");
  }
  if (spec.input_size <= 0 || spec.input_size > kMaxWidth) {
    return invalid("spec.input_size is " + std::to_string(spec.input_size) +
                   "; expected > 0 and <= " + std::to_string(kMaxWidth));
  }
  if (spec.parallel_iterations < 0) {
    return invalid("spec.parallel_iterations is " + std::to_string(spec.parallel_iterations) +
                   "; expected a positive integer (0 means the default, 32)");
  }
  if (spec.parallel_iterations == 0) m.spec.parallel_iterations = 32;
  if (spec.cells_fw.empty()) {
    return invalid("spec.cells_fw is empty; must specify at least one cell (as MultiRNNCell requires)");
  }
  const bool bi = spec.bidirectional();
  const bool stacked = spec.stack_bidirectional;
  if (stacked && spec.cells_bw.size() != spec.cells_fw.size()) {
    return invalid("spec.stack_bidirectional is true but spec.cells_fw has " + std::to_string(spec.cells_fw.size()) +
                   " cells and spec.cells_bw " + std::to_string(spec.cells_bw.size()) +
                   "; expected the same depth (stack_bidirectional_dynamic_rnn pairs them into layers)");
  }
  const char* dir_name[2] = {"fw", "bw"};
  auto where = [](int d, size_t i) {
    return std::string(d == 0 ? "spec.cells_fw[" : "spec.cells_bw[") + std::to_string(i) + "]";
  };
  for (int d = 0; d < (bi ? 2 : 1); ++d) {
    const std::vector<CellSpec>& cells = d == 0 ? spec.cells_fw : spec.cells_bw;
    for (size_t i = 0; i < cells.size(); ++i) {
      const CellSpec& c = cells[i];
      Status st = validate_cell(c, where(d, i));
      if (!st) return st;
      LayerModel l;
      l.direction = d;
      l.layer = static_cast<int>(i);
      l.stack_layer = l.layer;
      l.cell = c;
      l.units = c.num_units;
      l.is_lstm = c.kind == CellKind::kLSTM || c.kind == CellKind::kBasicLSTM;
      l.is_gru = c.kind == CellKind::kGRU;
      l.reset_after = c.kind == CellKind::kGRUResetAfter;
      l.project = c.num_proj > 0;
      l.peepholes = c.use_peepholes;
      l.residual = c.residual;
      l.input_keep = float32_value(c.input_keep_prob);
      l.output_keep = float32_value(c.output_keep_prob);
      l.state_keep = float32_value(c.state_keep_prob);
      l.input_dropout = l.input_keep < 1.0;
      l.output_dropout = l.output_keep < 1.0;
      l.state_dropout = l.state_keep < 1.0;
      l.out_width = l.project ? c.num_proj : c.num_units;
      l.gate_width = (l.is_lstm ? 4 : (l.is_gru ? 2 : (l.reset_after ? 3 : 1))) * c.num_units;  // bounded by kMaxWidth
      m.dirs[d].push_back(l);
    }
  }
  // A layer reads the layer below it, or with stack_bidirectional both directions' layers below
  // concatenated (widths are at most 2^41: the sum cannot overflow).
  for (int d = 0; d < (bi ? 2 : 1); ++d) {
    for (LayerModel& l : m.dirs[d]) {
      const size_t i = static_cast<size_t>(l.layer);
      l.in_width = i == 0    ? spec.input_size
                   : stacked ? m.dirs[0][i - 1].out_width + m.dirs[1][i - 1].out_width
                             : m.dirs[d][i - 1].out_width;
      if (l.residual && l.in_width != l.out_width) {
        return invalid(where(d, i) + ".residual is true but the layer's input width is " + std::to_string(l.in_width) +
                       " and its output width is " + std::to_string(l.out_width) +
                       "; expected equal widths (ResidualWrapper adds the input to the output)");
      }
    }
  }
  // Weights in TF's creation order: per direction, per layer; stack_bidirectional_dynamic_rnn runs
  // one bidirectional_dynamic_rnn per layer, which creates the forward cell's variables first.
  auto add_params = [&](LayerModel& l) -> Status {
    const size_t i = static_cast<size_t>(l.layer);
    const CellSpec& c = l.cell;
    // TF variable names: rnn/<cell>/..., rnn/multi_rnn_cell/cell_i/<cell>/..., bidirectional_rnn/fw/...,
    // stack_bidirectional_rnn/cell_i/bidirectional_rnn/fw/...
    std::string prefix;
    if (stacked) {
      prefix =
          "stack_bidirectional_rnn/cell_" + std::to_string(i) + "/bidirectional_rnn/" + dir_name[l.direction] + "/";
    } else {
      prefix = bi ? std::string("bidirectional_rnn/") + dir_name[l.direction] + "/" : std::string("rnn/");
      if (m.dirs[l.direction].size() > 1) prefix += "multi_rnn_cell/cell_" + std::to_string(i) + "/";
    }
    prefix += std::string(cell_scope_name(c.kind)) + "/";
    const int64_t in_width = l.in_width, rows = in_width + l.out_width;
    l.param_begin = m.param_count;
    bool ok = true;
    if (l.is_gru) {
      ok = add_param(&m, prefix, l, "gates/kernel", {rows, 2 * l.units}, &l.kernel) &&
           add_param(&m, prefix, l, "gates/bias", {2 * l.units}, &l.bias) &&
           add_param(&m, prefix, l, "candidate/kernel", {rows, l.units}, &l.cand_kernel) &&
           add_param(&m, prefix, l, "candidate/bias", {l.units}, &l.cand_bias);
    } else if (l.reset_after) {
      // kernel then recurrent_kernel: together the [Din + H, 3H] main kernel the other cells have.
      int64_t recurrent = 0;
      ok = add_param(&m, prefix, l, "kernel", {in_width, l.gate_width}, &l.kernel) &&
           add_param(&m, prefix, l, "recurrent_kernel", {l.units, l.gate_width}, &recurrent) &&
           add_param(&m, prefix, l, "bias", {2, l.gate_width}, &l.bias);
    } else {
      int64_t unused = 0;
      ok = add_param(&m, prefix, l, "kernel", {rows, l.gate_width}, &l.kernel) &&
           add_param(&m, prefix, l, "bias", {l.gate_width}, &l.bias) &&
           (!l.peepholes || (add_param(&m, prefix, l, "w_f_diag", {l.units}, &l.peephole) &&
                             add_param(&m, prefix, l, "w_i_diag", {l.units}, &unused) &&
                             add_param(&m, prefix, l, "w_o_diag", {l.units}, &unused))) &&
           (!l.project || add_param(&m, prefix, l, "projection/kernel", {l.units, l.out_width}, &l.projection));
    }
    if (!ok) {
      return invalid(where(l.direction, i) + ": the number of weights overflows 64 bits (input width " +
                     std::to_string(in_width) + ", num_units " + std::to_string(l.units) +
                     "); expected a smaller layer");
    }
    l.param_end = m.param_count;
    return Status::ok();
  };
  if (stacked) {
    for (size_t i = 0; i < m.dirs[0].size(); ++i) {
      for (int d = 0; d < 2; ++d) DYNRNN_TRY(add_params(m.dirs[d][i]));
    }
  } else {
    for (int d = 0; d < (bi ? 2 : 1); ++d) {
      for (LayerModel& l : m.dirs[d]) DYNRNN_TRY(add_params(l));
    }
  }
  // State leaves: per direction, per layer (TF's (states_fw, states_bw) in both bidirectional forms).
  int64_t state_col = 0;
  for (int d = 0; d < (bi ? 2 : 1); ++d) {
    for (LayerModel& l : m.dirs[d]) {
      const std::string leaf = std::string(dir_name[d]) + "/" + std::to_string(l.layer) + "/";
      if (l.is_lstm) {
        l.state_col_c = state_col;
        m.state.push_back({leaf + "c", d, l.layer, true, l.units, state_col});
        state_col += l.units;
      }
      l.state_col_h = state_col;
      m.state.push_back({leaf + "h", d, l.layer, false, l.out_width, state_col});
      state_col += l.out_width;
    }
  }
  m.state_width = state_col;
  *model = std::move(m);
  return Status::ok();
}

std::vector<Model> call_blocks(const Model& m) {
  if (!m.spec.stack_bidirectional) return {m};
  std::vector<Model> blocks;
  for (size_t i = 0; i < m.dirs[0].size(); ++i) {
    Model b;
    b.spec = m.spec;
    b.spec.stack_bidirectional = false;
    b.spec.cells_fw = {m.spec.cells_fw[i]};
    b.spec.cells_bw = {m.spec.cells_bw[i]};
    b.spec.input_size = m.dirs[0][i].in_width;
    for (int d = 0; d < 2; ++d) {
      LayerModel l = m.dirs[d][i];
      l.layer = 0;  // stack_layer, the weight offsets and the state columns stay the caller's
      b.dirs[d].push_back(l);
    }
    b.state_width = m.state_width;
    b.param_count = m.param_count;
    b.elem_bytes = m.elem_bytes;
    b.c_elems = m.c_elems;
    blocks.push_back(std::move(b));
  }
  return blocks;
}

}  // namespace dynrnn
