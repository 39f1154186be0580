// bench/runner_buffers.h — what every runner keeps on its arena: weights, the rotated input sets,
// lengths, and the result buffers, with their download. Allocated outside any timed region.
// A stacked shape (stack_bidirectional) has one [T, B, 2H] outputs buffer and one [T, B, 2H]
// upstream gradient per set, both directions joined (out_bw and dy_bw stay null), as dynrnn takes
// them; fetch() splits the outputs per direction again.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/arena.h"
#include "bench/problem.h"
#include "bench/types.h"

namespace bench {

template <typename T>
struct RunnerBuffers {
  struct Set {
    T* x = nullptr;
    T* dy_fw = nullptr;  ///< [T, B, H], or stacked [T, B, 2H] (both directions)
    T* dy_bw = nullptr;
  };

  RunnerBuffers(const Problem& p, Arena* arena, bool training) : training_(training) {
    weights = arena->upload_as<T>(p.weights);
    for (const InputSet& s : p.sets) {
      Set d;
      d.x = arena->upload_as<T>(s.x);
      if (training && p.stacked()) {
        d.dy_fw = arena->upload_as<T>(join_directions(p, s.dy_fw, s.dy_bw));
      } else if (training) {
        d.dy_fw = arena->upload_as<T>(s.dy_fw);
        if (p.shape.bidirectional) d.dy_bw = arena->upload_as<T>(s.dy_bw);
      }
      sets.push_back(d);
    }
    if (p.has_lengths) {
      lengths = arena->alloc<int32_t>(p.shape.B);
      arena->upload(lengths, p.lengths.data(), p.lengths.size() * sizeof(int32_t));
    }
    if (p.stacked()) {
      out_fw = arena->alloc<T>(2 * p.y_elems());
    } else {
      out_fw = arena->alloc<T>(p.y_elems());
      if (p.shape.bidirectional) out_bw = arena->alloc<T>(p.y_elems());
    }
    final_state = arena->alloc<T>(p.state_elems());
    if (training) {
      dx = arena->alloc<T>(p.x_elems());
      dinit = arena->alloc<T>(p.state_elems());
      dw = arena->alloc<T>(p.param_count);
    }
  }

  /// Input set i, rotating.
  const Set& set(int i) const { return sets[static_cast<size_t>(i) % sets.size()]; }

  /// Waits for the device, then downloads the outputs and, with grads, the gradients.
  HostResult fetch(Arena* arena, const Problem& p, bool grads) const {
    arena->sync();
    HostResult r;
    if (p.stacked()) {
      split_directions(p, arena->download_as<T>(out_fw, 2 * p.y_elems()), &r.out_fw, &r.out_bw);
    } else {
      r.out_fw = arena->download_as<T>(out_fw, p.y_elems());
      if (out_bw) r.out_bw = arena->download_as<T>(out_bw, p.y_elems());
    }
    r.final_state = arena->download_as<T>(final_state, p.state_elems());
    if (grads && training_) {
      r.has_grads = true;
      r.dx = arena->download_as<T>(dx, p.x_elems());
      r.dinit = arena->download_as<T>(dinit, p.state_elems());
      r.dw = arena->download_as<T>(dw, p.param_count);
    }
    return r;
  }

  T* weights = nullptr;
  std::vector<Set> sets;
  int32_t* lengths = nullptr;
  T* out_fw = nullptr;  ///< [T, B, H], or stacked [T, B, 2H] (both directions)
  T* out_bw = nullptr;  ///< [T, B, H] (bidirectional, not stacked)
  T* final_state = nullptr;
  T* dx = nullptr;
  T* dinit = nullptr;
  T* dw = nullptr;

 private:
  bool training_;
};

}  // namespace bench
