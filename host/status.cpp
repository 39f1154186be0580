#include "dynrnn/status.h"

namespace dynrnn {

const char* status_string(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kSuccess: return "Success";
    case StatusCode::kInvalidValue: return "InvalidValue";
    case StatusCode::kNotSupported: return "NotSupported";
    case StatusCode::kWorkspaceTooSmall: return "WorkspaceTooSmall";
    case StatusCode::kCudaError: return "CudaError";
    case StatusCode::kCublasError: return "CublasError";
    case StatusCode::kAllocationFailed: return "AllocationFailed";
    case StatusCode::kInternal: return "Internal";
  }
  return "Unknown";
}

std::string Status::to_string() const {
  std::string s = status_string(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace dynrnn
