#include "bench/types.h"

namespace bench {

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::kInference: return "inference";
    case Mode::kForward: return "forward";
    case Mode::kBackward: return "backward";
    case Mode::kTraining: return "training";
  }
  return "?";
}

bool parse_mode(const std::string& s, Mode* m) {
  if (s == "inference")
    *m = Mode::kInference;
  else if (s == "forward")
    *m = Mode::kForward;
  else if (s == "backward")
    *m = Mode::kBackward;
  else if (s == "training")
    *m = Mode::kTraining;
  else
    return false;
  return true;
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kFp32: return "fp32";
    case Precision::kTf32: return "tf32";
    case Precision::kFp64: return "fp64";
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
  }
  return "?";
}

bool parse_precision(const std::string& s, Precision* p) {
  if (s == "fp32")
    *p = Precision::kFp32;
  else if (s == "tf32")
    *p = Precision::kTf32;
  else if (s == "fp64")
    *p = Precision::kFp64;
  else if (s == "bf16")
    *p = Precision::kBf16;
  else if (s == "fp16")
    *p = Precision::kFp16;
  else
    return false;
  return true;
}

bool is_16bit(Precision p) {
  return p == Precision::kBf16 || p == Precision::kFp16;
}

int precision_bytes(Precision p) {
  switch (p) {
    case Precision::kFp64: return 8;
    case Precision::kBf16:
    case Precision::kFp16: return 2;
    default: return 4;
  }
}

int mode_flop_multiplier(Mode m) {
  switch (m) {
    case Mode::kBackward: return 2;
    case Mode::kTraining: return 3;
    default: return 1;
  }
}

bool mode_has_backward(Mode m) {
  return m == Mode::kBackward || m == Mode::kTraining;
}

}  // namespace bench
