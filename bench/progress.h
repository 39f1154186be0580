// bench/progress.h — the one-line progress indicator on stderr.
#pragma once

#include <cstddef>
#include <string>

namespace bench {

class Progress {
 public:
  explicit Progress(bool enabled);
  /// "[done/total] what" — rewritten in place on a terminal, one line per update otherwise.
  void update(size_t done, size_t total, const std::string& what);
  /// Erases the line (call before printing a table row on a terminal).
  void clear();
  void finish() { clear(); }

 private:
  bool enabled_;
  bool tty_;
  size_t last_len_ = 0;
};

}  // namespace bench
