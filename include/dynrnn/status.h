// dynrnn/status.h — error reporting: a status code plus a message that names the argument and its value.
#pragma once

#include <string>
#include <utility>

namespace dynrnn {

enum class StatusCode : int {
  kSuccess = 0,
  kInvalidValue,       ///< an argument is out of its documented range; nothing was launched
  kNotSupported,       ///< a valid request this build or backend cannot serve (e.g. an unsupported dtype)
  kWorkspaceTooSmall,  ///< workspace_bytes or reserve_bytes is below the size query's answer
  kCudaError,          ///< a CUDA runtime call failed
  kCublasError,        ///< a cuBLAS call failed
  kAllocationFailed,   ///< the handle could not allocate its own resources
  kInternal,           ///< a bug in dynrnn
};

/// Human-readable name of a status code ("Success", "InvalidValue", ...).
const char* status_string(StatusCode code) noexcept;

/// The result of every fallible dynrnn call. Cheap to copy on success (empty message).
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }

  bool is_ok() const noexcept { return code_ == StatusCode::kSuccess; }
  explicit operator bool() const noexcept { return is_ok(); }
  StatusCode code() const noexcept { return code_; }
  /// For failures: what went wrong, naming the argument, its value and what was expected.
  const std::string& message() const noexcept { return message_; }
  /// "<code>: <message>".
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kSuccess;
  std::string message_;
};

}  // namespace dynrnn
