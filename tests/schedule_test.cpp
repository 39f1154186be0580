// The schedule itself: chunked wavefronts, concurrent directions and swap_memory must give bitwise
// the results of in-order execution when every queue runs on its own thread with injected delays
// (so only the recorded events order the work), and swap_memory must not change a single bit.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "async_executor.h"
#include "host/rnn_impl.h"
#include "library_adapter.h"
#include "random_problem.h"

namespace {

using testing_support::LibraryOptions;
using testing_support::LibraryRun;

/// Replaces the handle's executor with threaded queues.
std::function<void(dynrnn::Rnn&)> threaded(const testing_support::DelayPolicy& policy) {
  return [policy](dynrnn::Rnn& rnn) {
    dynrnn::Rnn::Impl& impl = dynrnn::RnnTestAccess::impl(rnn);
    impl.executor<double>() = testing_support::make_async_executor<double>(std::move(impl.executor<double>()), policy);
  };
}

/// Executor queues of a problem: the caller's, one per layer, then (with swap) the copy queue.
int layer_queues(const ref::Problem& p) {
  return static_cast<int>(p.fw.size() + p.bw.size());
}

/// With pipeline_projections, queue 1 + layers + i is layer i's projection queue.
int projection_queues(const ref::Problem& p, const LibraryOptions& opt) {
  return opt.pipeline_projections ? layer_queues(p) : 0;
}

testing_support::ProblemOptions stacked_problems() {
  testing_support::ProblemOptions opt;
  opt.max_time = 10;
  opt.max_layers = 4;
  return opt;
}

TEST(Schedule, ThreadedQueuesMatchInOrderExecution) {
  std::mt19937_64 rng(4242);
  for (int i = 0; i < 30; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, stacked_problems());
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    LibraryOptions opt;
    opt.parallel_iterations = 1 + static_cast<int>(rng() % 3);
    opt.swap_memory = i % 2 == 0;
    opt.recompute = i % 3 == 0;
    opt.inference = i % 5 == 4;  // inference: a ring of two chunks per layer, reused across the wavefront
    opt.pipeline_projections = i % 4 >= 2;
    const std::string what = "configuration " + std::to_string(i) + (opt.pipeline_projections ? ", pipelined" : "");
    const LibraryRun in_order = testing_support::run_library<double>(p, &up, opt);
    testing_support::DelayPolicy policy;
    policy.seed = static_cast<unsigned>(i + 1);
    expect_bit_equal(in_order, testing_support::run_library<double>(p, &up, opt, threaded(policy)), what);
    // One layer's queue lags, so that the others run chunks ahead of it (every other time the
    // bottom layer of the forward stack, which both directions' input gradients meet behind).
    policy.max_delay_us = 5;
    policy.slow_queue = i % 2 == 0 ? 1 : 1 + static_cast<int>(rng() % (layer_queues(p) + projection_queues(p, opt)));
    policy.slow_delay_us = 200;
    expect_bit_equal(in_order, testing_support::run_library<double>(p, &up, opt, threaded(policy)),
                     what + " with queue " + std::to_string(policy.slow_queue) + " slow");
    if (HasFailure()) return;
  }
}

TEST(Schedule, SlowHostCopiesNeverExposeAStaleSlot) {
  // The copy queue lags far behind compute: a slot overwritten before it reached the host, or read
  // before it came back, would change the gradients.
  std::mt19937_64 rng(77);
  for (int i = 0; i < 12; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, stacked_problems());
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    LibraryOptions opt;
    opt.parallel_iterations = 1;
    opt.swap_memory = true;
    const LibraryRun in_order = testing_support::run_library<double>(p, &up, opt);
    testing_support::DelayPolicy policy;
    policy.max_delay_us = 5;
    policy.slow_queue = 1 + layer_queues(p);  // the copy queue
    policy.slow_delay_us = 300;
    policy.seed = static_cast<unsigned>(100 + i);
    expect_bit_equal(in_order, testing_support::run_library<double>(p, &up, opt, threaded(policy)),
                     "configuration " + std::to_string(i));
    if (HasFailure()) return;
  }
}

TEST(Schedule, StackedSwapNeverExposesAStaleConcatenation) {
  // stack_bidirectional with swap_memory: each lower layer's concatenated outputs go to the host
  // while the layer above runs forward and come back, one layer ahead, while the layer above that
  // runs backward, through two workspace slots that the layers reuse. Their copy queue, or the
  // blocks' chunk-copy queue, lags far behind compute: a slot overwritten before its copy left, or
  // read before its copy came back, would change the results.
  std::mt19937_64 rng(2811);
  int stacked = 0;
  for (int i = 0; stacked < 8 && i < 2000; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, stacked_problems());
    if (!p.stack_bidirectional || p.fw.size() < 2 || p.T == 0 || p.B == 0) continue;
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    LibraryOptions opt;
    opt.parallel_iterations = 1 + stacked % 2;
    opt.swap_memory = true;
    const std::string what = "stacked configuration " + std::to_string(stacked++) + ": " + testing_support::describe(p);
    const LibraryRun in_order = testing_support::run_library<double>(p, &up, opt);
    // The smallest ring (every layer's chunks go to the host too), then a budget that holds every
    // chunk but not the concatenations.
    size_t full = 0;
    for (bool rings_swap : {true, false}) {
      opt.activation_memory_budget = rings_swap ? 0 : full - 1;
      for (bool slow_concat : {true, false}) {
        dynrnn::CallPlan plan;
        auto slowed = [&](dynrnn::Rnn& rnn) {
          dynrnn::Rnn::Impl& impl = dynrnn::RnnTestAccess::impl(rnn);
          ASSERT_TRUE(dynrnn::make_call_plan(impl.model, impl.blocks, p.T, p.B, true, &plan).is_ok());
          if (full == 0) {  // the reserve without swap_memory: every chunk and the concatenations
            dynrnn::Model kept = impl.model;
            std::vector<dynrnn::Model> blocks = impl.blocks;
            kept.spec.swap_memory = false;
            for (dynrnn::Model& m : blocks) m.spec.swap_memory = false;
            dynrnn::CallPlan all;
            ASSERT_TRUE(dynrnn::make_call_plan(kept, blocks, p.T, p.B, true, &all).is_ok());
            full = all.reserve_bytes;
          }
          testing_support::DelayPolicy policy;
          policy.max_delay_us = 5;
          policy.slow_queue = slow_concat ? plan.concat_queue : plan.blocks[0].copy_queue;
          policy.slow_delay_us = 300;
          policy.seed = static_cast<unsigned>(i);
          threaded(policy)(rnn);
        };
        const std::string how = what + (rings_swap ? ", smallest ring" : ", every chunk on the device") +
                                (slow_concat ? ", concatenations' copies slow" : ", chunk copies slow");
        expect_bit_equal(in_order, testing_support::run_library<double>(p, &up, opt, slowed), how);
        EXPECT_TRUE(plan.concat_swapped) << how;
        EXPECT_EQ(plan.blocks[0].swap, rings_swap && p.T > opt.parallel_iterations * 2) << how;
      }
    }
    if (HasFailure()) return;
  }
  EXPECT_EQ(stacked, 8);
}

TEST(Schedule, PipelinedProjectionsAreBitwiseNeutralAndFenced) {
  // pipeline_projections: each layer's next input projection runs on its own queue beside the steps,
  // into the other of two buffers. The same bits as projecting on the layer's queue; and with a
  // projection queue or a layer queue lagging far behind (a buffer overwritten before the steps read
  // it, or read before the projection wrote it, would change them).
  std::mt19937_64 rng(909);
  for (int i = 0; i < 24; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, stacked_problems());
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    LibraryOptions opt;
    opt.parallel_iterations = 1 + static_cast<int>(rng() % 3);
    opt.swap_memory = i % 3 == 0;
    opt.recompute = i % 4 == 1;
    opt.inference = i % 6 == 5;
    const std::string what = "configuration " + std::to_string(i) + ": " + testing_support::describe(p);
    const LibraryRun plain = testing_support::run_library<double>(p, &up, opt);
    opt.pipeline_projections = true;
    expect_bit_equal(plain, testing_support::run_library<double>(p, &up, opt), what + ", pipelined");
    testing_support::DelayPolicy policy;
    policy.seed = static_cast<unsigned>(500 + i);
    policy.max_delay_us = 5;
    policy.slow_delay_us = 200;
    // A projection queue (its layer's steps wait for it), then a layer queue (its projections run
    // ahead until both buffers are full).
    const int layer = static_cast<int>(rng() % layer_queues(p));
    for (int slow : {1 + layer_queues(p) + layer, 1 + layer}) {
      policy.slow_queue = slow;
      expect_bit_equal(plain, testing_support::run_library<double>(p, &up, opt, threaded(policy)),
                       what + ", pipelined, queue " + std::to_string(slow) + " slow");
    }
    if (HasFailure()) return;
  }
}

TEST(Schedule, SwapMemoryIsBitwiseNeutral) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 40; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, stacked_problems());
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    LibraryOptions opt;
    opt.parallel_iterations = 1 + static_cast<int>(rng() % 3);
    const LibraryRun kept = testing_support::run_library<double>(p, &up, opt);
    opt.swap_memory = true;
    expect_bit_equal(kept, testing_support::run_library<double>(p, &up, opt), "configuration " + std::to_string(i));
    const LibraryRun kept32 = testing_support::run_library<float>(p, &up, opt);
    opt.swap_memory = false;
    expect_bit_equal(kept32, testing_support::run_library<float>(p, &up, opt),
                     "float32 configuration " + std::to_string(i));
    if (HasFailure()) return;
  }
}

TEST(Schedule, RecomputeKeepsOnlyStatesAndGivesTheSameGradients) {
  std::mt19937_64 rng(6);
  for (int i = 0; i < 30; ++i) {
    const ref::Problem p = testing_support::random_problem(rng, stacked_problems());
    const ref::Upstream up = testing_support::random_upstream(p, rng);
    LibraryOptions opt;
    opt.parallel_iterations = 1 + static_cast<int>(rng() % 3);
    opt.swap_memory = i % 2 == 0;
    const LibraryRun saved = testing_support::run_library<double>(p, &up, opt);
    opt.recompute = true;
    // On the CPU the regenerated GEMMs round exactly as the forward's did.
    expect_bit_equal(saved, testing_support::run_library<double>(p, &up, opt), "configuration " + std::to_string(i));
    if (HasFailure()) return;
  }
  // An LSTM keeps h and c (2H per row and step) instead of h, c and the four gates (6H).
  dynrnn::RnnSpec spec;
  spec.cells_fw = {dynrnn::CellSpec::lstm(64)};
  spec.input_size = 64;
  spec.parallel_iterations = 100;
  std::unique_ptr<dynrnn::Rnn> saving, regenerating;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &saving).is_ok());
  spec.recompute = true;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &regenerating).is_ok());
  size_t full = 0, states = 0;
  ASSERT_TRUE(saving->get_reserve_size(100, 32, &full).is_ok());
  ASSERT_TRUE(regenerating->get_reserve_size(100, 32, &states).is_ok());
  const size_t row_step = 32 * 64 * sizeof(float);
  EXPECT_EQ(full, (101 + 101 + 4 * 100) * row_step);
  EXPECT_EQ(states, (101 + 101) * row_step);
}

TEST(Schedule, SwapMovesChunksToTheHostWithinTheBudget) {
  dynrnn::RnnSpec spec;
  spec.cells_fw = {dynrnn::CellSpec::lstm(64), dynrnn::CellSpec::lstm(64)};
  spec.input_size = 32;
  spec.parallel_iterations = 10;
  const int64_t T = 100, B = 8;
  std::unique_ptr<dynrnn::Rnn> plain, swapped, budgeted;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &plain).is_ok());
  spec.swap_memory = true;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &swapped).is_ok());
  size_t keep = 0, ring = 0, host = 0, plain_host = 0;
  ASSERT_TRUE(plain->get_reserve_size(T, B, &keep).is_ok());
  ASSERT_TRUE(plain->get_host_reserve_size(T, B, &plain_host).is_ok());
  ASSERT_TRUE(swapped->get_reserve_size(T, B, &ring).is_ok());
  ASSERT_TRUE(swapped->get_host_reserve_size(T, B, &host).is_ok());
  EXPECT_EQ(plain_host, 0u);
  // Ten chunks: the smallest ring keeps two on the device and eight on the host.
  EXPECT_EQ(ring * 5, keep);
  EXPECT_EQ(host, keep - ring);
  // A budget of five chunks keeps five.
  spec.activation_memory_budget = keep / 2;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &budgeted).is_ok());
  size_t half = 0, half_host = 0;
  ASSERT_TRUE(budgeted->get_reserve_size(T, B, &half).is_ok());
  ASSERT_TRUE(budgeted->get_host_reserve_size(T, B, &half_host).is_ok());
  EXPECT_EQ(half, keep / 2);
  EXPECT_EQ(half_host, keep / 2);
  // A budget below two chunks is refused with the numbers.
  spec.activation_memory_budget = ring / 3;
  ASSERT_TRUE(dynrnn::Rnn::create(spec, dynrnn::Backend::kCpu, &budgeted).is_ok());
  dynrnn::Status st = budgeted->get_reserve_size(T, B, &half);
  EXPECT_EQ(st.code(), dynrnn::StatusCode::kInvalidValue);
  EXPECT_NE(st.message().find("activation_memory_budget is " + std::to_string(ring / 3)), std::string::npos)
      << st.message();
}

}  // namespace
