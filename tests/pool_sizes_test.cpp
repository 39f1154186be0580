// pool_sizes (what Rnn::create prepares: streams, events) bounds every plan's queues and events, and
// the bound is reached, so that no call of a CUDA handle ever grows its pools (which a call inside
// CUDA graph capture could not do).
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "host/model.h"
#include "host/plan.h"

namespace {

using dynrnn::CellSpec;
using dynrnn::RnnSpec;

TEST(PoolSizes, BoundEveryPlanAndAreReached) {
  const std::vector<CellSpec> cells = {CellSpec::lstm(4), CellSpec::gru(3), CellSpec::basic_rnn(5)};
  int reached_queues = 0, reached_events = 0, plans = 0;
  for (int layers = 1; layers <= 3; ++layers) {
    for (bool bidirectional : {false, true}) {
      for (bool swap : {false, true}) {
        for (size_t budget : {size_t(0), size_t(1) << 16, size_t(1) << 30}) {
          for (int k : {1, 3, 32}) {
            RnnSpec spec;
            spec.cells_fw.assign(cells.begin(), cells.begin() + layers);
            if (bidirectional) spec.cells_bw = {CellSpec::lstm(2)};
            spec.input_size = 3;
            spec.swap_memory = swap;
            spec.activation_memory_budget = budget;
            spec.parallel_iterations = k;
            dynrnn::Model model;
            ASSERT_TRUE(dynrnn::build_model(spec, &model).is_ok());
            const dynrnn::PoolSizes pools = dynrnn::pool_sizes(model);
            for (int64_t T : {0, 1, 7, 200, 5000}) {
              for (int64_t B : {0, 2}) {
                for (bool training : {false, true}) {
                  dynrnn::Plan plan;
                  if (!dynrnn::make_plan(model, T, B, training, &plan).is_ok()) continue;  // budget too small
                  ++plans;
                  EXPECT_LE(plan.queues, pools.queues) << layers << " layers, T " << T << ", K " << k;
                  EXPECT_LE(plan.events, pools.events) << layers << " layers, T " << T << ", K " << k;
                  reached_queues += plan.queues == pools.queues;
                  reached_events += plan.events == pools.events;
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(plans, 500);
  // Swapped plans with more than 64 chunks in the ring use every event and queue of the bound.
  EXPECT_GT(reached_queues, 0);
  EXPECT_GT(reached_events, 0);
}

}  // namespace
