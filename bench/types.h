// bench/types.h — the small vocabulary every bench file shares: modes, precisions, errors, the
// host-side result of one run, and the Runner interface that each implementation (dynrnn, naive,
// cuDNN) provides on the CPU or the GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

/// What one timed call does.
///  kInference: forward without a reserve (no saved activations).
///  kForward:   training forward (fills the reserve that backward reads).
///  kBackward:  backward only (data and weight gradients), after one training forward.
///  kTraining:  training forward + backward, the full step.
enum class Mode { kInference, kForward, kBackward, kTraining };

enum class Precision { kFp32, kTf32, kFp64, kBf16, kFp16 };

const char* mode_name(Mode m);
bool parse_mode(const std::string& s, Mode* m);
const char* precision_name(Precision p);
bool parse_precision(const std::string& s, Precision* p);
/// bf16 and fp16: 16-bit storage, float32 arithmetic (GEMMs accumulate in float32).
bool is_16bit(Precision p);
/// Bytes per element of the buffers (fp32 and tf32 use float storage).
int precision_bytes(Precision p);
/// Number of FLOP-equivalent passes over the forward work: inference/forward 1, backward 2, training 3.
int mode_flop_multiplier(Mode m);
/// Whether the mode needs the backward pass (and therefore gradients in verification).
bool mode_has_backward(Mode m);

/// Every failure inside the bench (CUDA, cuBLAS, cuDNN, dynrnn status) becomes one of these; the
/// driver catches it per row, records the message and goes on with the next row.
class BenchError : public std::runtime_error {
 public:
  explicit BenchError(const std::string& what) : std::runtime_error(what) {}
};

/// An implementation that cannot run a combination (e.g. a library that rejects a data type):
/// the row reads "unsupported" with the reason, and the run does not count it as a failure.
class BenchUnsupported : public BenchError {
 public:
  explicit BenchUnsupported(const std::string& what) : BenchError(what) {}
};

/// Everything one run produced, widened to double on the host, in dynrnn's layouts:
/// out_fw/out_bw [T, B, H] (time-major; a stacked shape's one [T, B, 2H] outputs buffer is split per
/// direction), final_state/dinit the flat state buffer, dx [T, B, I],
/// dw the flat weight table in TF layout.
struct HostResult {
  std::vector<double> out_fw, out_bw, final_state;
  bool has_grads = false;
  std::vector<double> dx, dinit, dw;
};

/// One implementation set up for one problem, precision and mode (buffers allocated, weights
/// loaded). run() is synchronous on the CPU and enqueues on the bench stream on the GPU.
class Runner {
 public:
  virtual ~Runner() = default;
  /// Runs one call of `mode` on input set `set` (kBackward needs a previous kForward or kTraining).
  virtual void run(Mode mode, int set) = 0;
  /// Waits for the device (GPU) and returns the outputs of the last forward and, with grads, the
  /// gradients of the last backward.
  virtual HostResult fetch(bool grads) = 0;
  virtual size_t workspace_bytes() const { return 0; }
  virtual size_t reserve_bytes() const { return 0; }
  /// Pinned host bytes a training forward moves out (and its backward brings back): swap_memory.
  virtual size_t host_reserve_bytes() const { return 0; }
  /// Non-empty when the implementation computes a different function than TF (verification
  /// is then NotVerified with this reason).
  virtual std::string unverifiable_reason() const { return {}; }
};

}  // namespace bench
