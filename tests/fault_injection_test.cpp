// Fault injection: every executor verb the orchestrator issues (the CUDA/cuBLAS calls on a GPU,
// including the pinned host-buffer allocation of swap_memory) and every host allocation the library
// makes can be made to fail at the n-th call. Each failure must come back from the public call as a
// clear status — the verb's own status unchanged, or kAllocationFailed for host memory — with
// nothing issued after the failing verb but end(), and the handle must stay usable: after the fault
// it gives bit for bit the results of a fresh handle. (LeakSanitizer: build these tests with
// -fsanitize=address to check that no failure path leaks.)
//
// FaultyExecutor wraps the handle's executor through RnnTestAccess (host/rnn_impl.h), forwards
// every verb of host/executor.h, and fails the n-th one; n runs over every verb of a training
// forward + backward of several configurations. Host allocations fail through a replaced global
// operator new armed on the current thread only.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "dtype_support.h"
#include "dynrnn/rnn.h"
#include "fault_configurations.h"
#include "faulty_executor.h"
#include "host/element_types.h"
#include "host/executor.h"
#include "host/rnn_impl.h"

// ------------------------------------------------------------------------------------------------
// Host allocation failures: a replaced operator new that throws std::bad_alloc at the n-th
// allocation made by the current thread while armed (disarmed: plain malloc).

// Sanitizer runtimes bring their own operator new: there, the host-allocation test is skipped (the
// verb-fault test still runs, under LeakSanitizer too).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DYNRNN_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#define DYNRNN_TEST_SANITIZED 1
#endif
#endif

namespace {
thread_local long t_alloc_countdown = 0;  ///< > 0: armed; the allocation that brings it to 0 fails
thread_local long t_alloc_count = 0;      ///< allocations while counting
thread_local bool t_counting = false;
}  // namespace

#ifndef DYNRNN_TEST_SANITIZED
void* operator new(std::size_t size) {
  if (t_counting) ++t_alloc_count;
  if (t_alloc_countdown > 0 && --t_alloc_countdown == 0) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // the replaced operator new allocates with malloc
#endif
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // DYNRNN_TEST_SANITIZED

namespace {

using dynrnn::Backend;
using dynrnn::CellSpec;
using dynrnn::Executor;
using dynrnn::MatRef;
using dynrnn::PointwiseOp;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using dynrnn::Status;
using dynrnn::StatusCode;
using dynrnn::Stream;
using testing_support::Call;
using testing_support::configurations;
using testing_support::describe;
using testing_support::FaultyExecutor;
using testing_support::Injection;

/// Results of a clean forward + backward on a fresh handle.
template <typename T>
std::vector<uint8_t> reference(const RnnSpec& spec) {
  std::unique_ptr<Rnn> rnn;
  EXPECT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  Call<T> c(*rnn);
  EXPECT_TRUE(rnn->forward(c.f).is_ok());
  EXPECT_TRUE(rnn->backward(c.b).is_ok());
  return c.results();
}

template <typename T>
void verb_faults(const RnnSpec& spec) {
  const std::vector<uint8_t> want = reference<T>(spec);
  std::unique_ptr<Rnn> rnn;
  ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  // How many verbs a forward and a backward issue.
  int64_t forward_verbs = 0, total = 0;
  {
    Call<T> c(*rnn);
    Injection<T> counting(*rnn, 0);
    ASSERT_TRUE(rnn->forward(c.f).is_ok());
    forward_verbs = counting.faulty().calls();
    ASSERT_TRUE(rnn->backward(c.b).is_ok());
    total = counting.faulty().calls();
    EXPECT_EQ(c.results(), want) << "the counting wrapper changed the results";
  }
  ASSERT_GT(forward_verbs, 2);
  ASSERT_GT(total, forward_verbs + 2);
  for (int64_t n = 1; n <= total; ++n) {
    SCOPED_TRACE("fault at verb " + std::to_string(n) + " of " + std::to_string(total) + " (" +
                 std::to_string(forward_verbs) + " in forward)");
    Call<T> c(*rnn);
    {
      Injection<T> inject(*rnn, n);
      const bool in_forward = n <= forward_verbs;
      const Status fs = rnn->forward(c.f);
      Status st = fs;
      if (!in_forward) {
        ASSERT_TRUE(fs.is_ok()) << fs.to_string();
        st = rnn->backward(c.b);
      }
      EXPECT_EQ(st.code(), StatusCode::kCudaError) << st.to_string();
      EXPECT_EQ(st.message(), FaultyExecutor<T>::message(n)) << "the verb's status must come back unchanged";
      EXPECT_EQ(inject.faulty().issued_after_fault(), 0) << "work was issued after a failed verb";
    }
    // The real executor back: the same handle gives a fresh handle's results, bit for bit.
    c.poison();
    ASSERT_TRUE(rnn->forward(c.f).is_ok());
    ASSERT_TRUE(rnn->backward(c.b).is_ok());
    ASSERT_EQ(c.results(), want) << "the handle is not usable after the fault";
  }
}

TEST(FaultInjection, EveryExecutorVerbFailureIsReportedAndRecoverable) {
  for (const RnnSpec& spec : configurations()) {
    SCOPED_TRACE(describe(spec));
    dynrnn::dispatch_dtype(spec.dtype, [&](auto tag) { verb_faults<typename decltype(tag)::type>(spec); });
  }
}

/// Host allocations: the n-th operator new made by create, the size queries, forward or backward
/// throws std::bad_alloc. The call must return kAllocationFailed (never let the exception escape
/// the C++ API, whose every function reports through Status), and the handle must stay usable.
TEST(FaultInjection, EveryHostAllocationFailureIsReportedAndRecoverable) {
#ifdef DYNRNN_TEST_SANITIZED
  GTEST_SKIP() << "operator new belongs to the sanitizer runtime in this build";
#endif
  for (const RnnSpec& spec : configurations()) {
    if (spec.dtype != dynrnn::DataType::kFloat32) continue;
    SCOPED_TRACE(describe(spec));
    const std::vector<uint8_t> want = reference<float>(spec);
    // Count the allocations of each phase.
    std::unique_ptr<Rnn> counted;
    t_alloc_count = 0;
    t_counting = true;
    const bool created = Rnn::create(spec, Backend::kCpu, &counted).is_ok();
    t_counting = false;
    const long create_allocs = t_alloc_count;
    ASSERT_TRUE(created);
    Call<float> probe(*counted);
    t_alloc_count = 0;
    t_counting = true;
    const bool ran = counted->forward(probe.f).is_ok() && counted->backward(probe.b).is_ok();
    t_counting = false;
    const long call_allocs = t_alloc_count;
    ASSERT_TRUE(ran);
    int escaped = 0, wrong_code = 0, unusable = 0;
    std::string first;
    for (long n = 1; n <= create_allocs; ++n) {
      std::unique_ptr<Rnn> rnn;
      t_alloc_countdown = n;
      try {
        const Status st = Rnn::create(spec, Backend::kCpu, &rnn);
        t_alloc_countdown = 0;
        if (st.code() != StatusCode::kAllocationFailed && !(st.is_ok() && rnn)) {
          if (wrong_code++ == 0) first = "create, allocation " + std::to_string(n) + ": " + st.to_string();
        }
      } catch (const std::bad_alloc&) {
        t_alloc_countdown = 0;
        if (escaped++ == 0) first = "create: std::bad_alloc escaped at allocation " + std::to_string(n);
      }
    }
    std::unique_ptr<Rnn> rnn;
    ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
    for (long n = 1; n <= call_allocs + 1; ++n) {
      Call<float> c(*rnn);
      t_alloc_countdown = n;
      try {
        Status st = rnn->forward(c.f);
        if (st.is_ok()) st = rnn->backward(c.b);
        t_alloc_countdown = 0;
        if (!st.is_ok() && st.code() != StatusCode::kAllocationFailed) {
          if (wrong_code++ == 0) first = "call, allocation " + std::to_string(n) + ": " + st.to_string();
        }
      } catch (const std::bad_alloc&) {
        t_alloc_countdown = 0;
        if (escaped++ == 0) first = "forward/backward: std::bad_alloc escaped at allocation " + std::to_string(n);
      }
      c.poison();
      if (!rnn->forward(c.f).is_ok() || !rnn->backward(c.b).is_ok() || c.results() != want) {
        if (unusable++ == 0 && first.empty()) first = "unusable after allocation failure " + std::to_string(n);
      }
    }
    t_alloc_countdown = 0;
    EXPECT_EQ(escaped, 0) << first << " (create makes " << create_allocs << " allocations, forward + backward "
                          << call_allocs << ")";
    EXPECT_EQ(wrong_code, 0) << first;
    EXPECT_EQ(unusable, 0) << first;
  }
}

/// swap_memory's host copy lives in the caller's host_reserve, next to the reserve. A training loop
/// whose buffers are new allocations each step (as with a caching allocator) must not make the
/// handle's own host memory grow: the calls allocate nothing that outlives them.
TEST(FaultInjection, HostMemoryStaysBoundedWhenReservesMove) {
#ifdef DYNRNN_TEST_SANITIZED
  GTEST_SKIP() << "mallinfo2 does not see the sanitizer's allocator";
#endif
  RnnSpec spec;
  spec.cells_fw = {CellSpec::lstm(16)};
  spec.input_size = 8;
  spec.swap_memory = true;
  spec.parallel_iterations = 1;
  std::unique_ptr<Rnn> rnn;
  ASSERT_TRUE(Rnn::create(spec, Backend::kCpu, &rnn).is_ok());
  const int64_t T = 32, B = 8;
  size_t host = 0, ws = 0, rs = 0;
  ASSERT_TRUE(rnn->get_host_reserve_size(T, B, &host).is_ok());
  ASSERT_TRUE(rnn->get_workspace_size(T, B, true, &ws).is_ok());
  ASSERT_TRUE(rnn->get_reserve_size(T, B, &rs).is_ok());
  ASSERT_GT(host, 0u);
  std::vector<float> x(T * B * 8, 0.1f), w(rnn->param_count(), 0.05f), out(T * B * 16);
  std::vector<char> workspace(ws);
  std::vector<std::vector<char>> reserves, host_reserves;  // all alive: every step has its own addresses
  auto step = [&] {
    reserves.emplace_back(rs);
    host_reserves.emplace_back(host);
    dynrnn::ForwardArgs f;
    f.x_shape[0] = B;
    f.x_shape[1] = T;
    f.x_shape[2] = 8;
    f.x = x.data();
    f.weights = w.data();
    f.outputs = out.data();
    f.workspace = workspace.data();
    f.workspace_bytes = ws;
    f.training = true;
    f.reserve = reserves.back().data();
    f.reserve_bytes = rs;
    f.host_reserve = host_reserves.back().data();
    f.host_reserve_bytes = host;
    return rnn->forward(f).is_ok();
  };
  auto heap = [] {
    const struct mallinfo2 m = mallinfo2();
    return static_cast<int64_t>(m.uordblks + m.hblkhd);  // small blocks + mmapped ones
  };
  constexpr int kSteps = 40;
  reserves.reserve(kSteps + 1);
  host_reserves.reserve(kSteps + 1);
  ASSERT_TRUE(step());
  const int64_t before = heap();
  for (int i = 0; i < kSteps; ++i) ASSERT_TRUE(step());
  // minus the caller's own reserves
  const int64_t grown = heap() - before - kSteps * static_cast<int64_t>(rs + host);
  EXPECT_LT(grown, 4 * static_cast<int64_t>(host))
      << "host memory grew by " << grown << " bytes over " << kSteps
      << " training steps with moving reserves (host reserve of one step: " << host << ")";
}

}  // namespace
