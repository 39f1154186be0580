// tests/cuda_emulation/device_state.h — the emulated device's state and the helpers that
// device.cpp (device, errors, test hooks), memory.cpp (allocations, copies) and streams.cpp (the
// scheduler, streams, events, capture and graphs) share.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "emulator.h"

struct Done {
  bool done = false;
};
using Token = std::shared_ptr<Done>;

struct Op {
  std::string what;
  std::function<void()> work;
  std::vector<Token> deps;
  Token token;
  uint64_t seq = 0;
};

struct Node {
  std::string what;
  std::function<void()> work;
  std::vector<size_t> deps;
};

struct CUgraph_st {
  std::vector<Node> nodes;
};
struct CUgraphExec_st {
  std::vector<Node> nodes;
};

struct Capture {
  std::unique_ptr<CUgraph_st> graph = std::make_unique<CUgraph_st>();
  cudaStream_t origin = nullptr;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id thread;
  bool invalidated = false;
  std::vector<cudaStream_t> members;
};

struct CUstream_st {
  int device = 0;        ///< the device current when it was created
  bool legacy = false;   ///< a device's legacy default stream (cudaStream_t 0)
  bool blocking = true;  ///< synchronizes with its device's legacy default stream
  std::deque<Op> queue;
  Token tail;  ///< the last work enqueued (outside capture)
  Capture* capture = nullptr;
  std::vector<size_t> frontier;  ///< capture nodes the next captured work depends on
};

struct CUevent_st {
  int device = 0;  ///< the device current when it was created
  enum class State { kNever, kRecorded, kCaptured, kCapturedEnded } state = State::kNever;
  bool timing = true;  ///< not cudaEventDisableTiming
  Token token;         ///< kRecorded: done when the stream reaches the record
  std::shared_ptr<std::chrono::steady_clock::time_point> reached;  ///< kRecorded: when it was
  Capture* capture = nullptr;
  std::vector<size_t> nodes;  ///< kCaptured: the capturing stream's frontier at the record
};

namespace cuda_emulation {
namespace detail {

constexpr size_t kTotalDeviceBytes = size_t(16) << 30;
constexpr size_t kAlignment = 256;       // what cudaMalloc guarantees
constexpr unsigned char kPoison = 0xff;  // fresh device memory reads as NaN in every float type
// Larger allocations (the cuBLAS workspaces, which the emulated GEMM never reads) stay untouched
// zero pages, so that they cost no memory and protecting them costs no page-table walk.
constexpr size_t kPoisonBytes = size_t(1) << 20;

struct Allocation {
  int device = 0;       ///< the device current at cudaMalloc
  uintptr_t start = 0;  ///< what cudaMalloc returned
  size_t bytes = 0;
  char* map = nullptr;  ///< the mapping: data pages, then one guard page
  size_t data_len = 0;  ///< bytes of data pages (the pointer sits at their end, 256-aligned)
};

enum class Policy { kLastIssuedFirst, kFifo, kRandom };

struct Device {
  std::recursive_mutex mutex;
  std::map<uintptr_t, Allocation> device;  ///< by start address
  std::map<uintptr_t, size_t> pinned;
  size_t allocated = 0;
  size_t pinned_bytes = 0;
  int64_t calls = 0;    ///< counted since fail_nth_call
  int64_t fail_at = 0;  ///< the counted call that fails (0: none)
  const char* failed_call = "";
  std::map<std::string, int64_t> call_counts;
  int device_count = 1;  ///< DYNRNN_EMULATION_DEVICES (1 or 2)
  CUstream_st legacy[kMaxDevices];
  std::set<CUstream_st*> streams;
  std::set<CUevent_st*> events;
  std::vector<std::unique_ptr<Capture>> captures;
  uint64_t seq = 0;
  cudaError_t sticky = cudaSuccess;
  bool accessible = false;  ///< device memory readable by the host right now (only while work runs)
  Policy policy = Policy::kLastIssuedFirst;
  std::mt19937_64 rng{0};

  Device() {
    for (int i = 0; i < kMaxDevices; ++i) {
      legacy[i].device = i;
      legacy[i].legacy = true;
      streams.insert(&legacy[i]);
    }
    const char* devices = std::getenv("DYNRNN_EMULATION_DEVICES");
    if (devices != nullptr && std::strcmp(devices, "2") == 0) device_count = 2;
    const char* env = std::getenv("DYNRNN_EMULATION_SCHEDULE");
    if (env != nullptr && std::strcmp(env, "fifo") == 0) policy = Policy::kFifo;
    if (env != nullptr && std::strncmp(env, "random:", 7) == 0) {
      policy = Policy::kRandom;
      rng.seed(std::strtoull(env + 7, nullptr, 10));
    }
  }
};

/// The one device state (never destroyed: handles may be released by static destructors).
Device& dev();
extern thread_local cudaError_t last_error;
extern thread_local int current_device;

/// The stream object (0: the current device's legacy stream).
CUstream_st* resolve(cudaStream_t s);

// memory.cpp
/// Device memory is readable by the host only while device work runs.
void set_accessible(bool accessible);
/// cudaErrorInvalidValue (and why, on stderr) when the pointers do not fit the copy kind.
cudaError_t copy_kind_error(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);

// streams.cpp
/// Runs device work until `finished()`; every step picks one ready stream head by the policy.
void run_until(const std::function<bool()>& finished);
bool stream_idle(const CUstream_st* s);
bool all_idle();
/// Enqueues outside capture, with the legacy stream's implicit ordering and `extra` dependencies.
void enqueue_op(CUstream_st* st, std::string what, std::function<void()> work, std::vector<Token> extra);
bool global_capture_active();
cudaError_t check_stream(cudaStream_t s);

}  // namespace detail
}  // namespace cuda_emulation

#define EMU_LOCK() std::lock_guard<std::recursive_mutex> emu_lock_(::cuda_emulation::device_mutex())
#define EMU_RETURN(expr) return ::cuda_emulation::set_error(expr)
#define EMU_INJECT(error) \
  if (::cuda_emulation::inject_fault(__func__)) EMU_RETURN(error)
