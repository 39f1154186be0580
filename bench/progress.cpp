#include "bench/progress.h"

#include <unistd.h>

#include <cstdio>

namespace bench {

Progress::Progress(bool enabled) : enabled_(enabled), tty_(isatty(fileno(stderr)) != 0) {}

void Progress::update(size_t done, size_t total, const std::string& what) {
  if (!enabled_) return;
  char buf[512];
  std::snprintf(buf, sizeof(buf), "[%zu/%zu] %s", done, total, what.c_str());
  const std::string line = buf;
  if (tty_) {
    std::fprintf(stderr, "\r%s", line.c_str());
    if (line.size() < last_len_) std::fprintf(stderr, "%*s", static_cast<int>(last_len_ - line.size()), "");
    last_len_ = line.size();
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

void Progress::clear() {
  if (enabled_ && tty_ && last_len_ > 0) std::fprintf(stderr, "\r%*s\r", static_cast<int>(last_len_), "");
  last_len_ = 0;
}

}  // namespace bench
