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
  enum Shape { kUnidirectional, kBidirectional, kStacked };
  int reached_queues = 0, reached_events = 0, plans = 0, stacked_reached = 0;
  for (int layers = 1; layers <= 3; ++layers) {
    for (Shape shape : {kUnidirectional, kBidirectional, kStacked}) {
      for (int knobs = 0; knobs < 4; ++knobs) {
        const bool swap = knobs & 1, pipelined = knobs & 2;
        for (size_t budget : {size_t(0), size_t(1) << 16, size_t(1) << 30}) {
          for (int k : {1, 3, 32}) {
            RnnSpec spec;
            spec.pipeline_projections = pipelined;
            spec.cells_fw.assign(cells.begin(), cells.begin() + layers);
            if (shape == kBidirectional) spec.cells_bw = {CellSpec::lstm(2)};
            // stack_bidirectional runs its blocks one after another, each with its plan's queues and
            // events, and a queue more when the concatenated outputs between layers go to the host.
            if (shape == kStacked) spec.cells_bw.assign(static_cast<size_t>(layers), CellSpec::gru(2));
            spec.stack_bidirectional = shape == kStacked;
            spec.input_size = 3;
            spec.swap_memory = swap;
            spec.activation_memory_budget = budget;
            spec.parallel_iterations = k;
            dynrnn::Model model;
            ASSERT_TRUE(dynrnn::build_model(spec, &model).is_ok());
            const std::vector<dynrnn::Model> blocks = dynrnn::call_blocks(model);
            const dynrnn::PoolSizes pools = dynrnn::pool_sizes(model);
            for (int64_t T : {0, 1, 7, 200, 5000}) {
              for (int64_t B : {0, 2}) {
                for (bool training : {false, true}) {
                  dynrnn::CallPlan plan;
                  // Fails when the budget is too small.
                  if (!dynrnn::make_call_plan(model, blocks, T, B, training, &plan).is_ok()) continue;
                  ++plans;
                  EXPECT_LE(plan.queues, pools.queues) << layers << " layers, T " << T << ", K " << k;
                  reached_queues += plan.queues == pools.queues;
                  stacked_reached += shape == kStacked && plan.queues == pools.queues;
                  for (const dynrnn::Plan& b : plan.blocks) {
                    EXPECT_LE(b.queues, plan.queues);
                    EXPECT_LE(b.events, pools.events) << layers << " layers, T " << T << ", K " << k;
                    reached_events += b.events == pools.events;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  EXPECT_GT(plans, 2000);
  // Swapped plans with more than 64 chunks in the ring use every event and queue of the bound.
  EXPECT_GT(reached_queues, 0);
  EXPECT_GT(reached_events, 0);
  EXPECT_GT(stacked_reached, 0);  // swapped chunks and concatenations
}

}  // namespace
