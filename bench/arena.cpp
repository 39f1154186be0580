#include "bench/arena.h"

#include <cstring>
#include <new>

namespace bench {
namespace {

class HostArena final : public Arena {
 public:
  void* alloc_host_bytes(size_t bytes) override { return alloc_bytes(bytes); }
  void* alloc_bytes(size_t bytes) override {
    // 64-byte aligned, zero-filled; at least one byte so that every buffer has a distinct address.
    const size_t n = (bytes + 63) / 64 + 1;
    try {
      blocks_.emplace_back(new Block[n]());
    } catch (const std::bad_alloc&) {
      throw BenchError("host allocation of " + std::to_string(bytes) + " bytes failed");
    }
    allocated_ += bytes;
    return blocks_.back().get();
  }
  void upload(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void sync() override {}
  bool on_device() const override { return false; }

 private:
  struct alignas(64) Block {
    unsigned char b[64];
  };
  std::vector<std::unique_ptr<Block[]>> blocks_;
};

}  // namespace

std::unique_ptr<Arena> make_host_arena() {
  return std::make_unique<HostArena>();
}

}  // namespace bench
