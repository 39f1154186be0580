// tests/cuda_emulation/kernels.cpp — kernel launches: the configuration limits of a real launch, then
// every block in order and, within a block, every thread. A kernel's first launch runs each thread
// as a fiber so that __syncthreads can suspend it until the whole block arrives; a kernel that never
// called __syncthreads then runs its threads as plain calls.
//
// Fibers: makecontext gives each its stack and setcontext enters it once; every later switch is a
// __builtin_setjmp / __builtin_longjmp pair, which, unlike swapcontext, makes no system call (to
// save and restore the signal mask), so a barrier costs a few instructions.
#include <sys/mman.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "emulator.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local uint3 blockDim;
thread_local uint3 gridDim;

namespace cuda_emulation {
namespace {

constexpr size_t kFiberStackBytes = size_t(256) << 10;

struct Fiber {
  ucontext_t context;
  void* resume[5];  ///< where __syncthreads suspended it
  char* stack = nullptr;
  uint3 block{};
  uint3 index{};
  unsigned char* shared = nullptr;  ///< its block's dynamic shared memory
  bool started = false;
  bool finished = false;
  bool at_grid_barrier = false;
};

struct BlockRun {
  void* scheduler[5];  ///< where the block's loop waits for the running fiber to stop
  std::vector<Fiber> fibers;
  Fiber* current = nullptr;
  const std::function<void()>* body = nullptr;
  bool barrier_seen = false;
  bool cooperative = false;
};

thread_local BlockRun* active_block = nullptr;       // set while a block runs as fibers
thread_local unsigned char* block_shared = nullptr;  // the running block's dynamic shared memory

/// kernel -> the dynamic shared memory it opted in to (cudaFuncAttributeMaxDynamicSharedMemorySize)
std::map<const void*, size_t>& shared_optin() {
  static auto* m = new std::map<const void*, size_t>;
  return *m;
}

/// The most dynamic shared memory a launch of `kernel` may use.
size_t shared_limit(const void* kernel) {
  const auto it = shared_optin().find(kernel);
  return it == shared_optin().end() || it->second < kSharedBytesDefault ? kSharedBytesDefault : it->second;
}

/// Blocks per multiprocessor that the occupancy query reports and a cooperative launch may use.
int resident_blocks(size_t shared_bytes) {
  if (shared_bytes == 0) return kBlocksPerMultiprocessor;
  const size_t fit = kSharedBytesPerMultiprocessor / shared_bytes;
  return fit < size_t(kBlocksPerMultiprocessor) ? static_cast<int>(fit) : kBlocksPerMultiprocessor;
}

/// DYNRNN_EMULATION_THREAD_ORDER=reverse runs blocks, and threads within each barrier interval, last
/// to first: a kernel whose result depends on the order its threads run in (threads of one launch
/// writing the same element, or reading one that another writes) then differs between the two
/// orders.
bool reversed() {
  static const bool r = [] {
    const char* env = std::getenv("DYNRNN_EMULATION_THREAD_ORDER");
    return env != nullptr && std::string(env) == "reverse";
  }();
  return r;
}

/// The fiber stacks of this host thread, reused by every launch (untouched pages cost nothing).
char* fiber_stack(size_t i) {
  thread_local std::vector<std::unique_ptr<char[]>> pool;
  while (pool.size() <= i) pool.emplace_back(new char[kFiberStackBytes]);
  return pool[i].get();
}

/// kernel -> runs without __syncthreads (learnt from its first launch)
std::map<const void*, bool>& barrier_free() {
  static auto* m = new std::map<const void*, bool>;
  return *m;
}

/// Kept out of line: a function must not call __builtin_longjmp on its own __builtin_setjmp buffer.
[[noreturn]] __attribute__((noinline)) void jump(void** target) {
  __builtin_longjmp(target, 1);
}

void fiber_main() {
  BlockRun* run = active_block;
  (*run->body)();
  run->current->finished = true;
  jump(run->scheduler);
}

/// getcontext, out of line: it returns twice as far as the compiler knows, which it would otherwise
/// hold against every local of the caller. (The saved context is only ever copied, never resumed.)
__attribute__((noinline)) void save_context(ucontext_t* c) {
  getcontext(c);
}

/// Runs `f` until it reaches __syncthreads or finishes.
__attribute__((noinline)) void switch_to(BlockRun& run, Fiber& f) {
  run.current = &f;
  blockIdx = f.block;
  threadIdx = f.index;
  block_shared = f.shared;
  if (__builtin_setjmp(run.scheduler) != 0) return;  // back from the fiber
  if (f.started) jump(f.resume);
  f.started = true;
  setcontext(&f.context);
}

bool valid_config(dim3 grid, dim3 block) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  return grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 && grid.z <= 65535 &&
         block.x >= 1 && block.y >= 1 && block.z >= 1 && block.x <= 1024 && block.y <= 1024 && block.z <= 64 &&
         threads <= 1024;
}

/// Runs the fibers of `run` (one block, or a whole cooperative grid) until all have returned. Within a
/// block, each round lets every live fiber run to its next __syncthreads. A cooperative grid runs
/// its blocks one after another, each until all its threads wait at grid.sync() (or returned), and
/// then releases that barrier: a block that reads what another block writes between two grid
/// barriers sees it in one block order and not in the other (DYNRNN_EMULATION_THREAD_ORDER).
/// make_fibers already ordered blocks and threads (last to first when reversed()).
void run_fibers(BlockRun& run, const ucontext_t& blank, size_t threads_per_block) {
  for (Fiber& f : run.fibers) {
    f.started = f.finished = f.at_grid_barrier = false;
    f.context = blank;
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = kFiberStackBytes;
    f.context.uc_link = nullptr;  // fibers end by jumping back, never by returning
    makecontext(&f.context, fiber_main, 0);
  }
  const size_t n = run.fibers.size();
  for (bool live = true; live;) {
    for (size_t b0 = 0; b0 < n; b0 += threads_per_block) {
      for (bool runnable = true; runnable;) {
        runnable = false;
        for (size_t i = b0; i < b0 + threads_per_block; ++i) {
          Fiber& f = run.fibers[i];
          if (f.finished || f.at_grid_barrier) continue;
          switch_to(run, f);
          runnable = runnable || !(f.finished || f.at_grid_barrier);
        }
      }
    }
    live = false;
    for (Fiber& f : run.fibers) {
      f.at_grid_barrier = false;
      live = live || !f.finished;
    }
  }
}

/// Calls f(index) for every index of the 3D extent, x fastest (last to first when reversed()).
template <typename F>
void for_each_index(dim3 extent, F&& f) {
  const uint64_t n = 1ull * extent.x * extent.y * extent.z;
  for (uint64_t k = 0; k < n; ++k) {
    const uint64_t i = reversed() ? n - 1 - k : k;
    f(uint3{static_cast<unsigned>(i % extent.x), static_cast<unsigned>(i / extent.x % extent.y),
            static_cast<unsigned>(i / extent.x / extent.y)});
  }
}

/// One fiber per thread of one block (or of the whole grid), stacks from the pool.
void make_fibers(BlockRun& run, dim3 grid, dim3 block, bool whole_grid) {
  const size_t threads = static_cast<size_t>(block.x) * block.y * block.z;
  run.fibers.reserve(whole_grid ? threads * grid.x * grid.y * grid.z : threads);
  size_t i = 0;
  const auto add = [&](uint3 b) {
    for_each_index(block, [&](uint3 t) {
      Fiber f;
      f.block = b;
      f.index = t;
      f.stack = fiber_stack(i++);
      run.fibers.push_back(f);
    });
  };
  if (whole_grid) {
    for_each_index(grid, add);
  } else {
    add(uint3{0, 0, 0});
  }
}

/// The dynamic shared memory of the blocks that run at once: each block's buffer ends where a
/// PROT_NONE guard page starts, so reading or writing past the launch's shared bytes faults (the
/// test dies), as compute-sanitizer memcheck would report it on a GPU.
class SharedMemory {
 public:
  SharedMemory(size_t blocks, size_t bytes) : bytes_(bytes) {
    if (bytes == 0) return;
    const size_t page = page_size();
    stride_ = (bytes + page - 1) / page * page + page;
    len_ = blocks * stride_;
    void* m = mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "cuda emulation: cannot map %zu bytes of shared memory\n", len_);
      std::abort();
    }
    map_ = static_cast<unsigned char*>(m);
    for (size_t b = 0; b < blocks; ++b) (void)mprotect(map_ + (b + 1) * stride_ - page, page, PROT_NONE);
  }
  ~SharedMemory() {
    if (map_) munmap(map_, len_);
  }
  SharedMemory(const SharedMemory&) = delete;
  SharedMemory& operator=(const SharedMemory&) = delete;

  /// Block b's buffer (16-byte aligned, its end at most 15 bytes before the guard page).
  unsigned char* block(size_t b) const {
    if (!map_) return nullptr;
    return map_ + ((b + 1) * stride_ - page_size() - bytes_) / 16 * 16;
  }
  /// 0xff bytes (a NaN) everywhere, as a block starts with garbage.
  void poison(size_t blocks) const {
    if (!map_) return;  // no dynamic shared memory
    for (size_t b = 0; b < blocks; ++b) std::memset(block(b), 0xff, bytes_);
  }

 private:
  size_t bytes_ = 0, stride_ = 0, len_ = 0;
  unsigned char* map_ = nullptr;
};

void run_grid(const void* kernel, dim3 grid, dim3 block, size_t shared_bytes, bool cooperative,
              const std::function<void()>& body) {
  gridDim = uint3{grid.x, grid.y, grid.z};
  blockDim = uint3{block.x, block.y, block.z};
  const size_t threads = static_cast<size_t>(block.x) * block.y * block.z;
  const size_t blocks = cooperative ? static_cast<size_t>(grid.x) * grid.y * grid.z : 1;
  // Every block that runs at once has its own shared memory; 0xff bytes (a NaN) until it writes.
  const SharedMemory shared(blocks, shared_bytes);
  const auto poison = [&] { shared.poison(blocks); };
  poison();
  auto known = barrier_free().find(kernel);
  const bool plain = !cooperative && known != barrier_free().end() && known->second;
  BlockRun run;
  run.body = &body;
  run.cooperative = cooperative;
  BlockRun* outer = active_block;
  unsigned char* outer_shared = block_shared;
  if (plain) {
    active_block = nullptr;
    block_shared = shared.block(0);
    for_each_index(grid, [&](uint3 b) {
      blockIdx = b;
      poison();
      for_each_index(block, [&](uint3 t) {
        threadIdx = t;
        body();
      });
    });
  } else {
    ucontext_t blank;  // one getcontext (a system call) per launch, copied into every fiber
    save_context(&blank);
    make_fibers(run, grid, block, cooperative);
    for (size_t i = 0; i < run.fibers.size(); ++i) run.fibers[i].shared = shared.block(i / threads);
    active_block = &run;
    if (cooperative) {
      run_fibers(run, blank, threads);
    } else {
      for_each_index(grid, [&](uint3 b) {
        for (Fiber& f : run.fibers) f.block = b;
        poison();
        run_fibers(run, blank, threads);
      });
      barrier_free()[kernel] = !run.barrier_seen;
    }
  }
  active_block = outer;
  block_shared = outer_shared;
}

}  // namespace

cudaError_t launch(const void* kernel, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream,
                   std::function<void()> body, bool cooperative) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  if (inject_fault(cooperative ? "cudaLaunchCooperativeKernel" : "cudaLaunchKernel")) {
    return set_error(cudaErrorNotPermitted);
  }
  if (!valid_config(grid, block) || shared_bytes > shared_limit(kernel)) {
    std::fprintf(stderr, "cuda emulation: invalid launch configuration grid (%u, %u, %u) block (%u, %u, %u)\n", grid.x,
                 grid.y, grid.z, block.x, block.y, block.z);
    return set_error(cudaErrorInvalidConfiguration);
  }
  if (stream_device(stream) != current_device_of_thread()) {
    std::fprintf(stderr, "cuda emulation: kernel launched into a stream of device %d while device %d is current\n",
                 stream_device(stream), current_device_of_thread());
    return set_error(cudaErrorInvalidResourceHandle);
  }
  if (cooperative && 1ull * grid.x * grid.y * grid.z > 1ull * kMultiProcessors * resident_blocks(shared_bytes)) {
    return set_error(cudaErrorCooperativeLaunchTooLarge);
  }
  return set_error(enqueue(stream, cooperative ? "cooperative kernel" : "kernel",
                           [kernel, grid, block, shared_bytes, cooperative, body = std::move(body)] {
                             run_grid(kernel, grid, block, shared_bytes, cooperative, body);
                           }));
}

unsigned char* dynamic_shared_memory() {
  return block_shared;
}

void grid_sync() {
  BlockRun* run = active_block;
  if (run == nullptr || !run->cooperative) {
    std::fprintf(stderr, "cuda emulation: grid.sync() in a kernel not launched with cudaLaunchCooperativeKernel\n");
    std::abort();
  }
  run->current->at_grid_barrier = true;
  if (__builtin_setjmp(run->current->resume) == 0) jump(run->scheduler);
}

cudaError_t set_function_attribute(const void* kernel, cudaFuncAttribute attr, int value) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  if (inject_fault("cudaFuncSetAttribute")) return set_error(cudaErrorNotPermitted);
  if (kernel == nullptr || attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<size_t>(value) > kSharedBytesOptin) {
    return set_error(cudaErrorInvalidValue);
  }
  shared_optin()[kernel] = static_cast<size_t>(value);
  return cudaSuccess;
}

cudaError_t occupancy(int* blocks, const void* kernel, int block_size, size_t shared_bytes) {
  std::lock_guard<std::recursive_mutex> lock(device_mutex());
  if (inject_fault("cudaOccupancyMaxActiveBlocksPerMultiprocessor")) return set_error(cudaErrorNotPermitted);
  if (blocks == nullptr || kernel == nullptr || block_size < 1 || block_size > 1024) {
    return set_error(cudaErrorInvalidValue);
  }
  *blocks = shared_bytes > shared_limit(kernel) ? 0 : resident_blocks(shared_bytes);
  return cudaSuccess;
}

}  // namespace cuda_emulation

void __syncthreads() {
  cuda_emulation::BlockRun* run = cuda_emulation::active_block;
  if (run == nullptr) {
    std::fprintf(stderr, "cuda emulation: __syncthreads in a kernel whose first launch never reached one\n");
    std::abort();
  }
  run->barrier_seen = true;
  if (__builtin_setjmp(run->current->resume) == 0) cuda_emulation::jump(run->scheduler);
}
