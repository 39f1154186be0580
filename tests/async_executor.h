// An executor for tests that runs every queue on its own host thread, with injected delays, and
// honours only the events the orchestrator records and waits for. If the schedule missed a fence
// (a slot read before its copy arrived, overwritten before it was saved or read, a chunk consumed
// before it was produced), results computed this way differ from those of the in-order executor.
#pragma once

#include <memory>

#include "host/executor.h"

namespace testing_support {

/// How long each queue's operations are held back before they run.
struct DelayPolicy {
  int max_delay_us = 50;  ///< uniform random delay before each operation, every queue
  int slow_queue = -1;    ///< this queue (e.g. a layer's, or the copy queue) also waits slow_delay_us
  int slow_delay_us = 0;  ///<   before each of its operations, so that the others run ahead of it
  unsigned seed = 1;
};

/// Wraps `inner` (an in-order CPU executor, whose verbs are thread-safe) in threaded queues.
template <typename T>
std::unique_ptr<dynrnn::Executor<T>> make_async_executor(std::unique_ptr<dynrnn::Executor<T>> inner,
                                                         const DelayPolicy& policy);

}  // namespace testing_support
