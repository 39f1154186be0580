// tests/cuda_emulation/device.cpp — the emulated device itself: its state, device queries, errors
// and the test hooks (hooks.h).
#include <cstdio>

#include "device_state.h"
#include "hooks.h"

namespace cuda_emulation {
namespace detail {

Device& dev() {
  static Device* d = new Device;
  return *d;
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

CUstream_st* resolve(cudaStream_t s) {
  return s == nullptr ? &dev().legacy[current_device] : s;
}

}  // namespace detail

using namespace detail;

std::recursive_mutex& device_mutex() {
  return dev().mutex;
}

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) last_error = e;
  return e;
}

cudaError_t sticky_error() {
  return dev().sticky;
}

void fault(const std::string& reason) {
  Device& d = dev();
  if (d.sticky == cudaSuccess) std::fprintf(stderr, "cuda emulation: device fault: %s\n", reason.c_str());
  d.sticky = cudaErrorIllegalAddress;
}

int current_device_of_thread() {
  return current_device;
}

void note_call(const char* api) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  ++dev().call_counts[api];
}

std::map<std::string, int64_t> call_counts() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  return dev().call_counts;
}

void reset_call_counts() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  dev().call_counts.clear();
}

bool inject_fault(const char* api) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  note_call(api);
  Device& d = dev();
  ++d.calls;
  if (d.fail_at == 0 || d.calls != d.fail_at) return false;
  d.fail_at = 0;
  d.failed_call = api;
  return true;
}

const char* failed_call() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  return dev().failed_call;
}

void fail_nth_call(int64_t n) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  dev().calls = 0;
  dev().fail_at = n;
  if (n > 0) dev().failed_call = "";
}

int64_t counted_calls() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  return dev().calls;
}

Resources resources() {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  const Device& d = dev();
  Resources r;
  r.device_bytes = d.allocated;
  r.pinned_bytes = d.pinned_bytes;
  r.streams = d.streams.size() - kMaxDevices;
  r.events = d.events.size();
  r.blas_handles = live_blas_handles();
  return r;
}

}  // namespace cuda_emulation

using namespace cuda_emulation;
using namespace cuda_emulation::detail;

// ---- device ------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count) {
  EMU_INJECT(cudaErrorNotPermitted);
  if (count == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *count = dev().device_count;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  EMU_INJECT(cudaErrorNotPermitted);
  if (device == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  EMU_INJECT(cudaErrorNotPermitted);
  if (device < 0 || device >= dev().device_count) EMU_RETURN(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  EMU_INJECT(cudaErrorNotPermitted);
  if (value == nullptr || device < 0 || device >= dev().device_count) EMU_RETURN(cudaErrorInvalidValue);
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = kMultiProcessors; return cudaSuccess;
    case cudaDevAttrCooperativeLaunch: *value = 1; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(kSharedBytesOptin); return cudaSuccess;
  }
  EMU_RETURN(cudaErrorInvalidValue);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  EMU_INJECT(cudaErrorNotPermitted);
  if (prop == nullptr || device < 0 || device >= dev().device_count) EMU_RETURN(cudaErrorInvalidValue);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU (not a GPU)");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = kMultiProcessors;
  prop->l2CacheSize = 4 << 20;
  prop->totalGlobalMem = kTotalDeviceBytes;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *version = 0;  // no driver
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *version = 0;  // not a CUDA runtime
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_capture_safe("cudaDeviceSynchronize")) EMU_RETURN(e);
  run_until(all_idle);
  EMU_RETURN(sticky_error());
}

cudaError_t cudaGetLastError() {
  const cudaError_t e = sticky_error() != cudaSuccess ? sticky_error() : last_error;
  last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  return sticky_error() != cudaSuccess ? sticky_error() : last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
#define EMU_NAME(e) \
  case e: return #e;
    EMU_NAME(cudaSuccess)
    EMU_NAME(cudaErrorInvalidValue)
    EMU_NAME(cudaErrorMemoryAllocation)
    EMU_NAME(cudaErrorInvalidConfiguration)
    EMU_NAME(cudaErrorNoDevice)
    EMU_NAME(cudaErrorInvalidDevice)
    EMU_NAME(cudaErrorInvalidResourceHandle)
    EMU_NAME(cudaErrorNotReady)
    EMU_NAME(cudaErrorIllegalAddress)
    EMU_NAME(cudaErrorLaunchFailure)
    EMU_NAME(cudaErrorCooperativeLaunchTooLarge)
    EMU_NAME(cudaErrorNotPermitted)
    EMU_NAME(cudaErrorStreamCaptureUnsupported)
    EMU_NAME(cudaErrorStreamCaptureInvalidated)
    EMU_NAME(cudaErrorStreamCaptureMerge)
    EMU_NAME(cudaErrorStreamCaptureUnmatched)
    EMU_NAME(cudaErrorStreamCaptureUnjoined)
    EMU_NAME(cudaErrorStreamCaptureIsolation)
    EMU_NAME(cudaErrorStreamCaptureImplicit)
    EMU_NAME(cudaErrorCapturedEvent)
#undef EMU_NAME
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t error) {
  return error == cudaSuccess ? "no error" : "error reported by the CPU emulation of the CUDA runtime";
}
