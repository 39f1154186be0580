// tests/cuda_emulation/device.cpp — the emulated device: memory, streams, events, the scheduler,
// stream capture and graphs.
//
// Nothing runs when it is enqueued. Work runs when the host waits for it (a synchronizing call),
// and then in an adversarial order: of the stream heads whose dependencies are met, the one issued
// LAST runs first. Two pieces of work on different streams without an event between them therefore
// run in the opposite order of issue, so a missing dependency (read before write, or a buffer
// overwritten before it was read) changes results instead of going unnoticed. The environment
// variable DYNRNN_EMULATION_SCHEDULE=fifo runs them in issue order instead, and random:<seed> in a
// seeded random order.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "emulator.h"
#include "hooks.h"

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
namespace {

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

Device& dev() {
  static Device* d = new Device;  // never destroyed: handles may be released by static destructors
  return *d;
}

thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

CUstream_st* resolve(cudaStream_t s) {
  return s == nullptr ? &dev().legacy[current_device] : s;
}

void protect(const Allocation& a, bool accessible) {
  if (a.data_len == 0) return;
  if (mprotect(a.map, a.data_len, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) != 0) {
    std::perror("cuda emulation: mprotect");
    std::abort();
  }
}

/// Device memory is readable by the host only while device work runs.
void set_accessible(bool accessible) {
  Device& d = dev();
  if (d.accessible == accessible) return;
  for (const auto& kv : d.device) protect(kv.second, accessible);
  d.accessible = accessible;
}

const Allocation* find_allocation(const void* p) {
  Device& d = dev();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = d.device.upper_bound(a);
  if (it == d.device.begin()) return nullptr;
  --it;
  return a < it->first + it->second.bytes ? &it->second : nullptr;
}

bool overlaps_device(const void* p, size_t bytes) {
  Device& d = dev();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = d.device.upper_bound(a + std::max<size_t>(bytes, 1) - 1);
  if (it == d.device.begin()) return false;
  --it;
  return it->first + it->second.bytes > a;
}

void run_op(Op& op) {
  if (op.work && dev().sticky == cudaSuccess) {
    set_accessible(true);
    op.work();
  }
  op.token->done = true;
}

bool ready(const Op& op) {
  return std::all_of(op.deps.begin(), op.deps.end(), [](const Token& t) { return t->done; });
}

/// Runs device work until `finished()`; every step picks one ready stream head by the policy.
void run_until(const std::function<bool()>& finished) {
  Device& d = dev();
  while (!finished()) {
    std::vector<CUstream_st*> candidates;
    for (CUstream_st* s : d.streams) {
      if (!s->queue.empty() && ready(s->queue.front())) candidates.push_back(s);
    }
    if (candidates.empty()) {
      std::fprintf(stderr, "cuda emulation: deadlock, pending work that can never run:\n");
      for (CUstream_st* s : d.streams) {
        if (!s->queue.empty())
          std::fprintf(stderr, "  stream %p: %s\n", static_cast<void*>(s), s->queue.front().what.c_str());
      }
      std::abort();
    }
    CUstream_st* pick = candidates.front();
    if (d.policy == Policy::kRandom) {
      pick = candidates[std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(d.rng)];
    } else {
      for (CUstream_st* s : candidates) {
        const bool later = s->queue.front().seq > pick->queue.front().seq;
        if (d.policy == Policy::kLastIssuedFirst ? later : !later) pick = s;
      }
    }
    Op op = std::move(pick->queue.front());
    pick->queue.pop_front();
    run_op(op);
  }
  set_accessible(false);
}

bool stream_idle(const CUstream_st* s) {
  return s->queue.empty();
}

bool all_idle() {
  const Device& d = dev();
  return std::all_of(d.streams.begin(), d.streams.end(), [](const CUstream_st* s) { return s->queue.empty(); });
}

/// Enqueues outside capture, with the legacy stream's implicit ordering and `extra` dependencies.
void enqueue_op(CUstream_st* st, std::string what, std::function<void()> work, std::vector<Token> extra) {
  Device& d = dev();
  Op op;
  op.what = std::move(what);
  op.work = std::move(work);
  op.deps = std::move(extra);
  const CUstream_st& legacy = d.legacy[st->device];
  if (st->legacy) {
    for (CUstream_st* s : d.streams) {
      if (s != st && s->device == st->device && s->blocking && s->tail && !s->tail->done) op.deps.push_back(s->tail);
    }
  } else if (st->blocking && legacy.tail && !legacy.tail->done) {
    op.deps.push_back(legacy.tail);
  }
  op.token = std::make_shared<Done>();
  op.seq = ++d.seq;
  st->tail = op.token;
  st->queue.push_back(std::move(op));
}

void invalidate(Capture* c) {
  c->invalidated = true;
}

bool global_capture_active() {
  for (const auto& c : dev().captures) {
    if (c->mode == cudaStreamCaptureModeGlobal ||
        (c->mode == cudaStreamCaptureModeThreadLocal && c->thread == std::this_thread::get_id())) {
      return true;
    }
  }
  return false;
}

void end_capture(Capture* c) {
  Device& d = dev();
  for (cudaStream_t s : c->members) {
    s->capture = nullptr;
    s->frontier.clear();
  }
  for (CUevent_st* e : d.events) {
    if (e->state == CUevent_st::State::kCaptured && e->capture == c) {
      e->state = CUevent_st::State::kCapturedEnded;
      e->capture = nullptr;
      e->nodes.clear();
    }
  }
  d.captures.erase(std::find_if(d.captures.begin(), d.captures.end(),
                                [c](const std::unique_ptr<Capture>& p) { return p.get() == c; }));
}

/// Runs a graph's nodes in a dependency-respecting order (the latest node among the ready ones first).
void run_graph(const std::vector<Node>& nodes) {
  std::vector<char> done(nodes.size(), 0);
  for (size_t remaining = nodes.size(); remaining > 0; --remaining) {
    size_t pick = nodes.size();
    for (size_t i = nodes.size(); i-- > 0;) {
      if (done[i]) continue;
      if (std::all_of(nodes[i].deps.begin(), nodes[i].deps.end(), [&](size_t j) { return done[j] != 0; })) {
        pick = i;
        break;
      }
    }
    if (nodes[pick].work) nodes[pick].work();
    done[pick] = 1;
  }
}

cudaError_t check_stream(cudaStream_t s) {
  if (s != nullptr && dev().streams.count(s) == 0) return cudaErrorInvalidResourceHandle;
  return cudaSuccess;
}

cudaError_t copy_kind_error(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  const bool dst_dev = device_range(dst, bytes), src_dev = device_range(src, bytes);
  const bool dst_host = host_range(dst, bytes), src_host = host_range(src, bytes);
  bool ok = false;
  switch (kind) {
    case cudaMemcpyHostToHost: ok = dst_host && src_host; break;
    case cudaMemcpyHostToDevice: ok = dst_dev && src_host; break;
    case cudaMemcpyDeviceToHost: ok = dst_host && src_dev; break;
    case cudaMemcpyDeviceToDevice: ok = dst_dev && src_dev; break;
    case cudaMemcpyDefault: ok = (dst_dev || dst_host) && (src_dev || src_host); break;
  }
  if (ok) return cudaSuccess;
  std::fprintf(stderr, "cuda emulation: cudaMemcpy kind %d does not fit dst %p (%s) and src %p (%s), %zu bytes\n",
               static_cast<int>(kind), dst,
               dst_dev    ? "device"
               : dst_host ? "host"
                          : "straddles device memory",
               src,
               src_dev    ? "device"
               : src_host ? "host"
                          : "straddles device memory",
               bytes);
  return cudaErrorInvalidValue;
}

}  // namespace

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

bool device_range(const void* p, size_t bytes) {
  const Allocation* a = find_allocation(p);
  if (a == nullptr) return false;
  return reinterpret_cast<uintptr_t>(p) + bytes <= a->start + a->bytes;
}

int current_device_of_thread() {
  return current_device;
}

int stream_device(cudaStream_t stream) {
  return resolve(stream)->device;
}

int device_of(const void* p) {
  const Allocation* a = find_allocation(p);
  return a == nullptr ? -1 : a->device;
}

bool pinned_range(const void* p, size_t bytes) {
  const Device& d = dev();
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = d.pinned.upper_bound(a);
  if (it == d.pinned.begin()) return false;
  --it;
  return a + bytes <= it->first + it->second;
}

bool host_range(const void* p, size_t bytes) {
  return p != nullptr && !overlaps_device(p, bytes);
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

cudaError_t check_capture_safe(const char* api) {
  if (!global_capture_active()) return cudaSuccess;
  for (const auto& c : dev().captures) invalidate(c.get());
  std::fprintf(stderr, "cuda emulation: %s during stream capture invalidates the capture\n", api);
  return cudaErrorStreamCaptureUnsupported;
}

cudaError_t enqueue(cudaStream_t stream, std::string what, std::function<void()> work) {
  Device& d = dev();
  if (d.sticky != cudaSuccess) return d.sticky;
  if (cudaError_t e = check_stream(stream)) return e;
  CUstream_st* st = resolve(stream);
  if (st->capture != nullptr) {
    Capture* c = st->capture;
    if (c->invalidated) return cudaErrorStreamCaptureInvalidated;
    c->graph->nodes.push_back(Node{std::move(what), std::move(work), st->frontier});
    st->frontier = {c->graph->nodes.size() - 1};
    return cudaSuccess;
  }
  if (st->legacy && global_capture_active()) {
    for (const auto& c : d.captures) invalidate(c.get());
    return cudaErrorStreamCaptureImplicit;
  }
  enqueue_op(st, std::move(what), std::move(work), {});
  return cudaSuccess;
}

}  // namespace cuda_emulation

using namespace cuda_emulation;

#define EMU_LOCK() std::lock_guard<std::recursive_mutex> emu_lock_(device_mutex())
#define EMU_RETURN(expr) return set_error(expr)
#define EMU_INJECT(error) \
  if (inject_fault(__func__)) EMU_RETURN(error)

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

// ---- memory ------------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorMemoryAllocation);
  if (ptr == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  if (cudaError_t e = check_capture_safe("cudaMalloc")) EMU_RETURN(e);
  if (sticky_error()) EMU_RETURN(sticky_error());
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  Device& d = dev();
  if (bytes > kTotalDeviceBytes - d.allocated) EMU_RETURN(cudaErrorMemoryAllocation);
  const size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
  const size_t data_len = (rounded + page_size() - 1) / page_size() * page_size();
  void* map = mmap(nullptr, data_len + page_size(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (map == MAP_FAILED) EMU_RETURN(cudaErrorMemoryAllocation);
  Allocation a;
  a.device = current_device;
  a.bytes = bytes;
  a.map = static_cast<char*>(map);
  a.data_len = data_len;
  protect(a, true);
  char* p = a.map + data_len - rounded;  // ends where the guard page starts (up to 255 bytes of slack)
  a.start = reinterpret_cast<uintptr_t>(p);
  if (rounded <= kPoisonBytes) std::memset(p, kPoison, rounded);
  if (!d.accessible) protect(a, false);
  d.device[reinterpret_cast<uintptr_t>(p)] = a;
  d.allocated += bytes;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  EMU_LOCK();
  note_call(__func__);
  if (ptr == nullptr) return cudaSuccess;
  if (cudaError_t e = check_capture_safe("cudaFree")) EMU_RETURN(e);
  Device& d = dev();
  auto it = d.device.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.device.end()) EMU_RETURN(cudaErrorInvalidValue);
  run_until(all_idle);  // cudaFree waits for the device
  munmap(it->second.map, it->second.data_len + page_size());
  d.allocated -= it->second.bytes;
  d.device.erase(it);
  EMU_RETURN(sticky_error());
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned /*flags*/) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorMemoryAllocation);
  if (ptr == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  if (cudaError_t e = check_capture_safe("cudaHostAlloc")) EMU_RETURN(e);
  *ptr =
      std::aligned_alloc(kAlignment, std::max<size_t>((bytes + kAlignment - 1) / kAlignment * kAlignment, kAlignment));
  if (*ptr == nullptr) EMU_RETURN(cudaErrorMemoryAllocation);
  dev().pinned[reinterpret_cast<uintptr_t>(*ptr)] = bytes;
  dev().pinned_bytes += bytes;
  return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  return cudaHostAlloc(ptr, bytes, cudaHostAllocDefault);
}

cudaError_t cudaFreeHost(void* ptr) {
  EMU_LOCK();
  note_call(__func__);
  if (ptr == nullptr) return cudaSuccess;
  if (cudaError_t e = check_capture_safe("cudaFreeHost")) EMU_RETURN(e);
  Device& d = dev();
  auto it = d.pinned.find(reinterpret_cast<uintptr_t>(ptr));
  if (it == d.pinned.end()) EMU_RETURN(cudaErrorInvalidValue);
  run_until(all_idle);
  std::free(ptr);
  d.pinned_bytes -= it->second;
  d.pinned.erase(it);
  return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  if (attributes == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *attributes = cudaPointerAttributes{cudaMemoryTypeUnregistered, -1, nullptr, const_cast<void*>(ptr)};
  if (device_range(ptr, 1)) {
    *attributes = cudaPointerAttributes{cudaMemoryTypeDevice, 0, const_cast<void*>(ptr), nullptr};
  } else if (pinned_range(ptr, 1)) {
    *attributes = cudaPointerAttributes{cudaMemoryTypeHost, 0, const_cast<void*>(ptr), const_cast<void*>(ptr)};
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  EMU_LOCK();
  note_call(__func__);
  if (free_bytes == nullptr || total_bytes == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *total_bytes = kTotalDeviceBytes;
  *free_bytes = kTotalDeviceBytes - dev().allocated;
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  if (bytes == 0) return cudaSuccess;
  if (cudaError_t e = copy_kind_error(dst, src, bytes, kind)) EMU_RETURN(e);
  // The runtime stages a copy between the device and pageable memory and may wait for the device
  // first: a hidden synchronization, counted so that tests can require that none happens.
  const bool pageable = (host_range(dst, bytes) && !pinned_range(dst, bytes) && device_range(src, bytes)) ||
                        (host_range(src, bytes) && !pinned_range(src, bytes) && device_range(dst, bytes));
  if (pageable) note_call("cudaMemcpyAsync with pageable host memory");
  EMU_RETURN(enqueue(stream, "cudaMemcpyAsync", [dst, src, bytes] { std::memcpy(dst, src, bytes); }));
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_capture_safe("cudaMemcpy")) EMU_RETURN(e);
  if (cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr)) return e;
  run_until([] { return stream_idle(&dev().legacy[current_device]); });
  EMU_RETURN(sticky_error());
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  if (bytes == 0) return cudaSuccess;
  if (!device_range(dst, bytes)) {
    std::fprintf(stderr, "cuda emulation: cudaMemset of %zu bytes at %p is not inside one device allocation\n", bytes,
                 dst);
    EMU_RETURN(cudaErrorInvalidValue);
  }
  EMU_RETURN(enqueue(stream, "cudaMemsetAsync", [dst, value, bytes] { std::memset(dst, value, bytes); }));
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_capture_safe("cudaMemset")) EMU_RETURN(e);
  if (cudaError_t e = cudaMemsetAsync(dst, value, bytes, nullptr)) return e;
  run_until([] { return stream_idle(&dev().legacy[current_device]); });
  EMU_RETURN(sticky_error());
}

// ---- streams -------------------------------------------------------------------------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorMemoryAllocation);
  if (stream == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  auto* s = new CUstream_st;
  s->device = current_device;
  s->blocking = (flags & cudaStreamNonBlocking) == 0;
  dev().streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  EMU_LOCK();
  note_call(__func__);
  if (stream == nullptr || dev().streams.count(stream) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (stream->capture != nullptr) EMU_RETURN(cudaErrorStreamCaptureUnsupported);
  // The stream's pending work still completes; running it now is one schedule the device may pick.
  run_until([stream] { return stream_idle(stream); });
  dev().streams.erase(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (resolve(stream)->capture != nullptr) {
    invalidate(resolve(stream)->capture);
    EMU_RETURN(cudaErrorStreamCaptureUnsupported);
  }
  if (cudaError_t e = check_capture_safe("cudaStreamSynchronize")) EMU_RETURN(e);
  CUstream_st* st = resolve(stream);
  run_until([st] { return stream_idle(st); });
  EMU_RETURN(sticky_error());
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned /*flags*/) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  Device& d = dev();
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (event == nullptr || d.events.count(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (d.sticky) EMU_RETURN(d.sticky);
  CUstream_st* st = resolve(stream);
  using State = CUevent_st::State;
  if (event->state == State::kNever) return cudaSuccess;  // waiting on a never-recorded event is a no-op
  if (st->capture != nullptr) {
    if (event->state == State::kCaptured && event->capture == st->capture) {
      for (size_t n : event->nodes) {
        if (std::find(st->frontier.begin(), st->frontier.end(), n) == st->frontier.end()) st->frontier.push_back(n);
      }
      return cudaSuccess;
    }
    invalidate(st->capture);
    EMU_RETURN(event->state == State::kCaptured ? cudaErrorStreamCaptureMerge : cudaErrorStreamCaptureIsolation);
  }
  switch (event->state) {
    case State::kCaptured:  // the stream joins the capture, after the recorded nodes
      if (st->legacy) EMU_RETURN(cudaErrorStreamCaptureImplicit);
      st->capture = event->capture;
      st->frontier = event->nodes;
      event->capture->members.push_back(st);
      return cudaSuccess;
    case State::kCapturedEnded: EMU_RETURN(cudaErrorCapturedEvent);
    case State::kRecorded:
      if (st->legacy && global_capture_active()) EMU_RETURN(cudaErrorStreamCaptureImplicit);
      enqueue_op(st, "cudaStreamWaitEvent", nullptr, {event->token});
      return cudaSuccess;
    case State::kNever: break;
  }
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (stream == nullptr) EMU_RETURN(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot be captured
  if (stream->capture != nullptr) EMU_RETURN(cudaErrorInvalidValue);
  auto c = std::make_unique<Capture>();
  c->origin = stream;
  c->mode = mode;
  c->thread = std::this_thread::get_id();
  c->members.push_back(stream);
  stream->capture = c.get();
  stream->frontier.clear();
  dev().captures.push_back(std::move(c));
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  EMU_LOCK();
  note_call(__func__);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (graph == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *graph = nullptr;
  Capture* c = resolve(stream)->capture;
  if (c == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  if (c->origin != stream) EMU_RETURN(cudaErrorStreamCaptureUnmatched);
  if (c->invalidated) {
    end_capture(c);
    EMU_RETURN(cudaErrorStreamCaptureInvalidated);
  }
  // Every captured node must be joined back: an ancestor of (or in) the origin stream's frontier.
  const std::vector<Node>& nodes = c->graph->nodes;
  std::vector<char> joined(nodes.size(), 0);
  std::vector<size_t> todo = stream->frontier;
  while (!todo.empty()) {
    const size_t n = todo.back();
    todo.pop_back();
    if (joined[n]) continue;
    joined[n] = 1;
    for (size_t p : nodes[n].deps) todo.push_back(p);
  }
  if (std::find(joined.begin(), joined.end(), 0) != joined.end()) {
    end_capture(c);
    EMU_RETURN(cudaErrorStreamCaptureUnjoined);
  }
  *graph = c->graph.release();
  end_capture(c);
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (status == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  const Capture* c = resolve(stream)->capture;
  *status = c == nullptr     ? cudaStreamCaptureStatusNone
            : c->invalidated ? cudaStreamCaptureStatusInvalidated
                             : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

// ---- events --------------------------------------------------------------------------------------
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorMemoryAllocation);
  if (event == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *event = new CUevent_st;
  (*event)->device = current_device;
  (*event)->timing = (flags & cudaEventDisableTiming) == 0;
  dev().events.insert(*event);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  EMU_LOCK();
  note_call(__func__);
  if (event == nullptr || dev().events.erase(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  delete event;  // waits already enqueued hold their own reference to the record
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  EMU_LOCK();
  EMU_INJECT(cudaErrorNotPermitted);
  Device& d = dev();
  if (cudaError_t e = check_stream(stream)) EMU_RETURN(e);
  if (event == nullptr || d.events.count(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (d.sticky) EMU_RETURN(d.sticky);
  CUstream_st* st = resolve(stream);
  if (st->device != event->device) EMU_RETURN(cudaErrorInvalidResourceHandle);  // as CUDA: same device
  if (st->capture != nullptr) {
    if (st->capture->invalidated) EMU_RETURN(cudaErrorStreamCaptureInvalidated);
    event->state = CUevent_st::State::kCaptured;
    event->capture = st->capture;
    event->nodes = st->frontier;
    return cudaSuccess;
  }
  if (st->legacy && global_capture_active()) EMU_RETURN(cudaErrorStreamCaptureImplicit);
  auto reached = std::make_shared<std::chrono::steady_clock::time_point>();
  enqueue_op(st, "cudaEventRecord", [reached] { *reached = std::chrono::steady_clock::now(); }, {});
  event->reached = reached;
  event->state = CUevent_st::State::kRecorded;
  event->token = st->tail;
  event->capture = nullptr;
  event->nodes.clear();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  EMU_LOCK();
  note_call(__func__);
  if (event == nullptr || dev().events.count(event) == 0) EMU_RETURN(cudaErrorInvalidResourceHandle);
  if (event->state == CUevent_st::State::kCaptured || event->state == CUevent_st::State::kCapturedEnded) {
    EMU_RETURN(cudaErrorCapturedEvent);
  }
  if (cudaError_t e = check_capture_safe("cudaEventSynchronize")) EMU_RETURN(e);
  if (event->state == CUevent_st::State::kRecorded) {
    const Token t = event->token;
    run_until([t] { return t->done; });
  }
  EMU_RETURN(sticky_error());
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
  // The emulated device makes progress only when waited for, so a query waits (a poll loop ends).
  return cudaEventSynchronize(event);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  EMU_LOCK();
  if (ms == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  for (cudaEvent_t e : {start, end}) {
    if (e == nullptr || dev().events.count(e) == 0 || !e->timing) EMU_RETURN(cudaErrorInvalidResourceHandle);
    if (e->state != CUevent_st::State::kRecorded) EMU_RETURN(cudaErrorInvalidResourceHandle);
    if (!e->token->done) EMU_RETURN(cudaErrorNotReady);
  }
  *ms = std::chrono::duration<float, std::milli>(*end->reached - *start->reached).count();
  return cudaSuccess;
}

// ---- graphs --------------------------------------------------------------------------------------
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long /*flags*/) {
  EMU_LOCK();
  note_call(__func__);
  if (exec == nullptr || graph == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  EMU_LOCK();
  note_call(__func__);
  if (exec == nullptr) EMU_RETURN(cudaErrorInvalidValue);
  auto nodes = std::make_shared<std::vector<Node>>(exec->nodes);  // the launch keeps what it runs
  EMU_RETURN(enqueue(stream, "cudaGraphLaunch", [nodes] { run_graph(*nodes); }));
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}
