#include "bench/report.h"

#include <cmath>
#include <sstream>

namespace bench {
namespace {

std::string num(double v, int precision = 6) {
  if (std::isnan(v)) return "";
  std::ostringstream os;
  os.precision(precision);
  os << v;
  return os.str();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"')
      out += "\"\"";
    else if (c == '\n')
      out += ' ';
    else
      out += c;
  }
  return out + "\"";
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  return std::isfinite(v) ? num(v, 9) : std::string("null");
}

/// Field values of a row in csv_columns() order; `numeric` tells JSON which ones are numbers.
std::vector<std::pair<std::string, bool>> fields(const Row& r) {
  auto s = [](const std::string& v) { return std::make_pair(v, false); };
  auto i = [](int64_t v) { return std::make_pair(std::to_string(v), true); };
  auto d = [](double v) { return std::make_pair(num(v, 9), true); };
  return {s(r.shape_id),
          s(r.source),
          s(r.cell),
          i(r.T),
          i(r.B),
          i(r.I),
          i(r.H),
          i(r.layers),
          i(r.directions),
          s(r.lengths),
          i(r.t_loop),
          i(r.sum_len),
          s(r.precision),
          s(r.mode),
          s(r.impl),
          s(r.variant),
          s(r.device),
          s(r.timer),
          s(r.status),
          i(r.iters),
          d(r.median_ms),
          d(r.p10_ms),
          d(r.p90_ms),
          d(r.per_step_us),
          d(r.per_crit_step_us),
          d(r.flops_full),
          d(r.tflops_full),
          d(r.tflops_rec),
          d(r.pct_roofline),
          d(r.floor_ms),
          d(r.bound_compute_ms),
          d(r.bound_memory_ms),
          d(r.bound_dependency_ms),
          s(r.binding),
          d(r.model_bytes),
          d(r.peak_mem_bytes),
          d(r.workspace_bytes),
          d(r.reserve_bytes),
          s(r.verify),
          s(r.verify_ref),
          d(r.fwd_err),
          d(r.grad_err),
          s(r.note),
          s(r.command)};
}

std::string mib(double bytes) {
  if (std::isnan(bytes)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", bytes / (1024.0 * 1024.0));
  return buf;
}

std::string fixed(double v, const char* fmt) {
  if (std::isnan(v)) return "-";
  char buf[48];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

}  // namespace

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> cols = {"shape_id",
                                                "source",
                                                "cell",
                                                "T",
                                                "B",
                                                "I",
                                                "H",
                                                "layers",
                                                "directions",
                                                "lengths",
                                                "t_loop",
                                                "sum_len",
                                                "precision",
                                                "mode",
                                                "impl",
                                                "variant",
                                                "device",
                                                "timer",
                                                "status",
                                                "iters",
                                                "median_ms",
                                                "p10_ms",
                                                "p90_ms",
                                                "per_step_us",
                                                "per_crit_step_us",
                                                "flops_full",
                                                "tflops_full",
                                                "tflops_rec",
                                                "pct_roofline",
                                                "floor_ms",
                                                "bound_compute_ms",
                                                "bound_memory_ms",
                                                "bound_dependency_ms",
                                                "binding",
                                                "model_bytes",
                                                "peak_mem_bytes",
                                                "workspace_bytes",
                                                "reserve_bytes",
                                                "verify",
                                                "verify_ref",
                                                "fwd_err",
                                                "grad_err",
                                                "note",
                                                "command"};
  return cols;
}

Report::~Report() {
  if (csv_) std::fclose(csv_);
}

bool Report::open(const std::string& csv_path, const std::string& json_path, std::string* error) {
  json_path_ = json_path;
  if (!csv_path.empty()) {
    csv_ = std::fopen(csv_path.c_str(), "w");
    if (!csv_) {
      *error = "cannot open --csv file " + csv_path;
      return false;
    }
    const auto& cols = csv_columns();
    for (size_t k = 0; k < cols.size(); ++k) std::fprintf(csv_, "%s%s", k ? "," : "", cols[k].c_str());
    std::fprintf(csv_, "\n");
    std::fflush(csv_);
  }
  return true;
}

void Report::set_meta(const std::string& key, const std::string& value) {
  for (auto& kv : meta_) {
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  }
  meta_.emplace_back(key, value);
}

void Report::add_calibration(const std::string& name, double value, const std::string& unit, const std::string& note) {
  calib_.push_back({name, value, unit, note});
  std::printf("  %-48s %14s %-10s %s\n", name.c_str(), fixed(value, "%.4g").c_str(), unit.c_str(), note.c_str());
  std::fflush(stdout);
}

void Report::print_header() const {
  for (const auto& kv : meta_) std::printf("# %-14s %s\n", kv.first.c_str(), kv.second.c_str());
  std::printf("\n%-10s %-8s %5s %4s %5s %5s %2s %3s %-7s %-4s %-9s %-33s %10s %21s %9s %8s %8s %-17s %8s %s\n", "shape",
              "cell", "T", "B", "I", "H", "L", "dir", "lengths", "prec", "mode", "impl", "median_ms", "p10..p90_ms",
              "us/step", "TF/s", "TF/s_rec", "%roof (binding)", "mem_MiB", "verify (rel err)");
  std::fflush(stdout);
}

void Report::add(const Row& r) {
  rows_.push_back(r);
  const std::string impl = r.variant.empty() ? r.impl : r.impl + ":" + r.variant;
  std::string roof = "-";
  if (!std::isnan(r.pct_roofline)) roof = fixed(100.0 * r.pct_roofline, "%.1f%%") + " (" + r.binding + ")";
  std::string verify = r.verify;
  if (r.verify == "NotVerified" && !r.verify_ref.empty()) verify += " (" + r.verify_ref.substr(0, 60) + ")";
  if (!std::isnan(r.fwd_err) || !std::isnan(r.grad_err)) {
    verify += " (";
    if (!std::isnan(r.fwd_err)) verify += "fwd " + fixed(r.fwd_err, "%.1e");
    if (!std::isnan(r.grad_err))
      verify += std::string(std::isnan(r.fwd_err) ? "" : ", ") + "grad " + fixed(r.grad_err, "%.1e");
    verify += ")";
  }
  std::string timing;
  if (r.status == "ok") {
    timing = fixed(r.median_ms, "%10.4f") + " " + fixed(r.p10_ms, "%10.4f") + ".." + fixed(r.p90_ms, "%-10.4f");
  } else {
    timing = std::string(10, ' ') + " " + r.status;
    timing.resize(32, ' ');
  }
  std::printf("%-10s %-8s %5lld %4lld %5lld %5lld %2d %3s %-7s %-4s %-9s %-33s %s %9s %8s %8s %-17s %8s %s%s%s\n",
              r.shape_id.c_str(), r.cell.c_str(), static_cast<long long>(r.T), static_cast<long long>(r.B),
              static_cast<long long>(r.I), static_cast<long long>(r.H), r.layers, r.directions == 2 ? "bi" : "uni",
              r.lengths.c_str(), r.precision.c_str(), r.mode.c_str(), impl.c_str(), timing.c_str(),
              fixed(r.per_step_us, "%.2f").c_str(), fixed(r.tflops_full, "%.4f").c_str(),
              fixed(r.tflops_rec, "%.4f").c_str(), roof.c_str(), mib(r.peak_mem_bytes).c_str(), verify.c_str(),
              r.note.empty() ? "" : "  # ", r.note.c_str());
  std::fflush(stdout);
  if (csv_) {
    const auto f = fields(r);
    for (size_t k = 0; k < f.size(); ++k) std::fprintf(csv_, "%s%s", k ? "," : "", csv_field(f[k].first).c_str());
    std::fprintf(csv_, "\n");
    std::fflush(csv_);
  }
}

bool Report::finish(std::string* error) {
  if (json_path_.empty()) return true;
  std::FILE* f = std::fopen(json_path_.c_str(), "w");
  if (!f) {
    *error = "cannot open --json file " + json_path_;
    return false;
  }
  std::fprintf(f, "{\n  \"meta\": {");
  for (size_t k = 0; k < meta_.size(); ++k) {
    std::fprintf(f, "%s\n    %s: %s", k ? "," : "", json_string(meta_[k].first).c_str(),
                 json_string(meta_[k].second).c_str());
  }
  std::fprintf(f, "\n  },\n  \"calibration\": [");
  for (size_t k = 0; k < calib_.size(); ++k) {
    const Calib& c = calib_[k];
    std::fprintf(f, "%s\n    {\"name\": %s, \"value\": %s, \"unit\": %s, \"note\": %s}", k ? "," : "",
                 json_string(c.name).c_str(), json_number(c.value).c_str(), json_string(c.unit).c_str(),
                 json_string(c.note).c_str());
  }
  std::fprintf(f, "\n  ],\n  \"rows\": [");
  const auto& cols = csv_columns();
  for (size_t k = 0; k < rows_.size(); ++k) {
    const auto fs = fields(rows_[k]);
    std::fprintf(f, "%s\n    {", k ? "," : "");
    for (size_t c = 0; c < fs.size(); ++c) {
      std::string value;
      if (fs[c].second) {
        const std::string& v = fs[c].first;
        value = (v.empty() || v.find("inf") != std::string::npos || v.find("nan") != std::string::npos) ? "null" : v;
      } else
        value = json_string(fs[c].first);
      std::fprintf(f, "%s%s: %s", c ? ", " : "", json_string(cols[c]).c_str(), value.c_str());
    }
    std::fprintf(f, "}");
  }
  std::fprintf(f, "\n  ]\n}\n");
  const bool ok = std::fclose(f) == 0;
  if (!ok) *error = "writing --json file " + json_path_ + " failed";
  return ok;
}

}  // namespace bench
