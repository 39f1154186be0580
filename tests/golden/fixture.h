// Loader for dynrnn golden fixtures (text format v1, produced by
// tests/golden/generate.py). Plain C++17 + standard library.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace golden {

struct Tensor {
  std::vector<int64_t> dims;
  std::vector<double> values;
};

// One "cell <dir> <layer> key=value ..." line. dir is "fw" or "bw".
struct CellLine {
  std::string dir;
  int layer = 0;
  std::map<std::string, std::string> attrs;
};

struct Fixture {
  std::string name;
  std::map<std::string, std::string> meta;      // every "key value" header line, e.g. T, B, D, dtype, time_major ...
  std::vector<CellLine> cells;                  // in file order
  std::map<std::string, std::string> tf_names;  // fixture tensor name -> TF variable name (from "tfname" lines)
  std::map<std::string, Tensor> tensors;

  int64_t meta_int(const std::string& key) const;             // throws std::runtime_error if missing/not int
  const std::string& meta_str(const std::string& key) const;  // throws if missing
  bool has(const std::string& tensor) const;
  const Tensor& at(const std::string& tensor) const;  // throws std::runtime_error naming the tensor and fixture
  std::vector<const CellLine*> cells_of(const std::string& dir) const;  // sorted by layer
};

// Throws std::runtime_error with path + line on bad input.
Fixture load_fixture(const std::string& path);

// Sorted full paths of *.txt files in dir.
std::vector<std::string> list_fixtures(const std::string& dir);

}  // namespace golden
