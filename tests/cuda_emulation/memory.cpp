// tests/cuda_emulation/memory.cpp — emulated device memory: allocations that end at a guard page
// and that host code cannot touch (PROT_NONE) except while device work runs, pinned host memory, and
// the copies and fills between them.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "device_state.h"

namespace cuda_emulation {

size_t page_size() {
  static const size_t p = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

namespace detail {
namespace {

void protect(const Allocation& a, bool accessible) {
  if (a.data_len == 0) return;
  if (mprotect(a.map, a.data_len, accessible ? PROT_READ | PROT_WRITE : PROT_NONE) != 0) {
    std::perror("cuda emulation: mprotect");
    std::abort();
  }
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

}  // namespace

void set_accessible(bool accessible) {
  Device& d = dev();
  if (d.accessible == accessible) return;
  for (const auto& kv : d.device) protect(kv.second, accessible);
  d.accessible = accessible;
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

}  // namespace detail

using namespace detail;

bool device_range(const void* p, size_t bytes) {
  const Allocation* a = find_allocation(p);
  if (a == nullptr) return false;
  return reinterpret_cast<uintptr_t>(p) + bytes <= a->start + a->bytes;
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

}  // namespace cuda_emulation

using namespace cuda_emulation;
using namespace cuda_emulation::detail;

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
