// cuda_runtime.h of the CPU emulation (tests/cuda_emulation/README.md): the part of the CUDA runtime
// that dynrnn and its GPU tests use, with CUDA's names, types and error codes, so that cuda/*.cu and
// tests/gpu_*test.cpp compile unchanged as plain C++ and run on a machine without a GPU.
//
// What it models: device memory that host code cannot touch (PROT_NONE outside device work) with a
// guard page after every allocation; streams that run nothing until the host synchronizes, then
// run in an adversarial order that any missing event dependency shows up in; the legacy default
// stream's implicit synchronization; events; stream capture with CUDA's rules (isolation, joins,
// unsafe calls) and graph replay; per-thread last error and sticky faults; launch-configuration
// limits; kernels as host functions run thread by thread, with __syncthreads and __shared__.
// Device math (expf, tanhf, ...) is the host's, so results match a GPU to rounding, not bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- kernel language -------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One emulated block runs at a time (its threads as fibers), so a function-local static is what one
// block shares.
#define __shared__ static

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};

// uint3 (trivial) rather than dim3 for all four: a thread_local of a type with a constructor is
// reached through a TLS wrapper function, which UBSan takes for a null pointer.
extern thread_local uint3 threadIdx;
extern thread_local uint3 blockIdx;
extern thread_local uint3 blockDim;
extern thread_local uint3 gridDim;
void __syncthreads();

// ---- types and constants ---------------------------------------------------------------------
enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchFailure = 719,
  cudaErrorCooperativeLaunchTooLarge = 720,
  cudaErrorNotPermitted = 800,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureMerge = 902,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureIsolation = 905,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorCapturedEvent = 907,
};

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrCooperativeLaunch = 95,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
};

enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_64F = 1,
  CUDA_R_16F = 2,
  CUDA_R_16BF = 14,
};

constexpr unsigned cudaEventDefault = 0x00;
constexpr unsigned cudaEventDisableTiming = 0x02;
constexpr unsigned cudaStreamDefault = 0x00;
constexpr unsigned cudaStreamNonBlocking = 0x01;
constexpr unsigned cudaHostAllocDefault = 0x00;

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
  cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

/// The fields dynrnn-bench reads.
struct cudaDeviceProp {
  char name[256];
  int major;
  int minor;
  int multiProcessorCount;
  int l2CacheSize;
  size_t totalGlobalMem;
};

struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;
using cudaGraph_t = CUgraph_st*;
using cudaGraphExec_t = CUgraphExec_st*;

// ---- API ---------------------------------------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDriverGetVersion(int* version);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

cudaError_t cudaMalloc(void** ptr, size_t bytes);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned flags);
cudaError_t cudaMallocHost(void** ptr, size_t bytes);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr);
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
template <typename T>
cudaError_t cudaHostAlloc(T** ptr, size_t bytes, unsigned flags) {
  return cudaHostAlloc(reinterpret_cast<void**>(ptr), bytes, flags);
}
template <typename T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes);
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream = 0);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = 0);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags);
cudaError_t cudaStreamCreateWithPriority(cudaStream_t* stream, unsigned flags, int priority);
cudaError_t cudaDeviceGetStreamPriorityRange(int* least, int* greatest);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags = 0);
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph);
cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = 0);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventQuery(cudaEvent_t event);
/// Milliseconds of host time between the moments the device reached the two records.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long flags = 0);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t graph);

namespace cuda_emulation {

/// Enqueues a kernel: `body` runs every thread of every block when the stream gets to it. `kernel`
/// identifies the function (whether it uses __syncthreads is learnt on its first launch). A
/// cooperative launch runs the whole grid at once, and every barrier in it is grid-wide.
cudaError_t launch(const void* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                   std::function<void()> body, bool cooperative = false);

/// The emulated device's size: what cudaGetDeviceProperties and cudaDeviceGetAttribute report.
constexpr int kMultiProcessors = 4;
/// What the occupancy query reports for any kernel whose shared memory allows it.
constexpr int kBlocksPerMultiprocessor = 2;
/// Shared memory, as on an H100: 48 KiB per block unless the kernel opts in (cudaFuncSetAttribute)
/// up to kSharedBytesOptin; a multiprocessor holds kSharedBytesPerMultiprocessor.
constexpr size_t kSharedBytesDefault = size_t(48) << 10;
constexpr size_t kSharedBytesOptin = size_t(227) << 10;
constexpr size_t kSharedBytesPerMultiprocessor = size_t(228) << 10;

/// The running block's dynamic shared memory (the launch's shared_bytes, its own buffer per block,
/// filled with 0xff bytes, a NaN, at the block's start as real shared memory holds garbage).
unsigned char* dynamic_shared_memory();

/// cooperative_groups::grid_group::sync(): waits for every thread of the cooperative grid.
void grid_sync();

cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attr, int value);
cudaError_t occupancy(int* blocks, const void* kernel, int block_size, size_t shared_bytes);
/// Devices: 1, or 2 with DYNRNN_EMULATION_DEVICES=2 (each with its own legacy stream; a kernel must be
/// launched into a stream of the current device, an event recorded on a stream of its own device, a
/// cuBLAS handle used while its device is current, on memory of that device).
constexpr int kMaxDevices = 2;

template <typename... P, size_t... I>
std::tuple<std::decay_t<P>...> unpack_arguments(void** args, std::index_sequence<I...>) {
  return std::tuple<std::decay_t<P>...>(*static_cast<std::decay_t<P>*>(args[I])...);
}

}  // namespace cuda_emulation

/// The runtime's C++ launch API: the arguments are copied now, as a real launch copies them.
template <typename... P>
cudaError_t cudaLaunchKernel(void (*kernel)(P...), dim3 grid, dim3 block, void** args, size_t shared_bytes = 0,
                             cudaStream_t stream = 0) {
  auto values = std::make_shared<std::tuple<std::decay_t<P>...>>(
      cuda_emulation::unpack_arguments<P...>(args, std::index_sequence_for<P...>{}));
  return cuda_emulation::launch(reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream,
                                [kernel, values] { std::apply(kernel, *values); });
}

/// A cooperative launch: the grid may not exceed what can be resident at once.
template <typename... P>
cudaError_t cudaLaunchCooperativeKernel(void (*kernel)(P...), dim3 grid, dim3 block, void** args,
                                        size_t shared_bytes = 0, cudaStream_t stream = 0) {
  auto values = std::make_shared<std::tuple<std::decay_t<P>...>>(
      cuda_emulation::unpack_arguments<P...>(args, std::index_sequence_for<P...>{}));
  return cuda_emulation::launch(
      reinterpret_cast<const void*>(kernel), grid, block, shared_bytes, stream,
      [kernel, values] { std::apply(kernel, *values); }, true);
}

template <typename... P>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, void (*kernel)(P...), int block_size,
                                                          size_t shared_bytes) {
  return cuda_emulation::occupancy(blocks, reinterpret_cast<const void*>(kernel), block_size, shared_bytes);
}

template <typename... P>
cudaError_t cudaFuncSetAttribute(void (*kernel)(P...), cudaFuncAttribute attr, int value) {
  return cuda_emulation::set_function_attribute(reinterpret_cast<const void*>(kernel), attr, value);
}
