// bench/report.h — one result row, and its three renderings: a readable table on stdout (one line
// per row as it finishes), a CSV file (flushed per row) and a JSON file (written at the end, with
// the run's metadata and calibration).
#pragma once

#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace bench {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct Row {
  std::string shape_id, source, cell;
  int64_t T = 0, B = 0, I = 0, H = 0;
  int layers = 0, directions = 1;
  std::string lengths;
  int64_t t_loop = 0, sum_len = 0;
  std::string precision, mode, impl, variant;
  std::string device;         ///< "gpu" or "cpu"
  std::string timer;          ///< "cuda-events" or "host-wall-clock"
  std::string status = "ok";  ///< ok | error | skipped | unsupported
  int iters = 0;
  double median_ms = kNaN, p10_ms = kNaN, p90_ms = kNaN;
  double per_step_us = kNaN;       ///< time / (t_loop * layers)
  double per_crit_step_us = kNaN;  ///< time / S_crit
  double tflops_full = kNaN, tflops_rec = kNaN;
  double pct_roofline = kNaN;
  double floor_ms = kNaN, bound_compute_ms = kNaN, bound_memory_ms = kNaN, bound_dependency_ms = kNaN;
  std::string binding;
  double model_bytes = kNaN;     ///< modelled memory traffic (bytes) of the row
  double flops_full = kNaN;      ///< FLOPs counted in tflops_full
  double peak_mem_bytes = kNaN;  ///< cudaMemGetInfo delta (GPU) / bytes allocated (CPU)
  double workspace_bytes = kNaN, reserve_bytes = kNaN;
  std::string verify = "NotVerified";
  std::string verify_ref;
  double fwd_err = kNaN, grad_err = kNaN;
  std::string note;
  std::string command;
};

/// The CSV columns, in order (bench/pytorch_compare.py writes the same header).
const std::vector<std::string>& csv_columns();

class Report {
 public:
  Report() = default;
  ~Report();
  Report(const Report&) = delete;
  Report& operator=(const Report&) = delete;

  /// Opens the CSV file (if any) and remembers the JSON path. Returns false with a message if the
  /// CSV file cannot be opened.
  bool open(const std::string& csv_path, const std::string& json_path, std::string* error);
  /// Metadata printed in the header and stored in JSON ("device", "cuda_runtime", ...).
  void set_meta(const std::string& key, const std::string& value);
  /// A calibration measurement (JSON "calibration" and a block on stdout).
  void add_calibration(const std::string& name, double value, const std::string& unit, const std::string& note);
  void print_header() const;
  void add(const Row& r);
  /// Writes the JSON file; returns false with a message on failure.
  bool finish(std::string* error);
  const std::vector<Row>& rows() const { return rows_; }

 private:
  struct Calib {
    std::string name;
    double value;
    std::string unit, note;
  };
  std::FILE* csv_ = nullptr;
  std::string json_path_;
  std::vector<std::pair<std::string, std::string>> meta_;
  std::vector<Calib> calib_;
  std::vector<Row> rows_;
};

}  // namespace bench
