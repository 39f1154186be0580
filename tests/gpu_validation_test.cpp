// Validation that only the CUDA backend can do: swap_memory's host_reserve must be pinned host
// memory. A copy to or from pageable memory waits for the device and is staged by the driver, so a
// call would synchronize the host (and could not be captured); the call is refused before anything
// runs, with a message naming the argument. Skips without a device (CI runs it on the emulated
// device).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "call_buffers.h"
#include "device_call.h"
#include "dynrnn/rnn.h"
#include "gpu_support.h"

namespace {

using dynrnn::Rnn;
using dynrnn::Status;
using dynrnn::StatusCode;

void expect_refused(const Status& st, const char* call) {
  EXPECT_EQ(st.code(), StatusCode::kInvalidValue) << call << ": " << st.to_string();
  EXPECT_NE(st.message().find("host_reserve"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("pageable host memory"), std::string::npos) << st.message();
}

bool all_nan(const std::vector<float>& v) {
  for (float x : v) {
    if (!std::isnan(x)) return false;
  }
  return true;
}

TEST(GpuValidation, PageableHostReserveIsRefused) {
  REQUIRE_GPU();
  dynrnn::RnnSpec spec;
  spec.cells_fw = {dynrnn::CellSpec::lstm(4), dynrnn::CellSpec::gru(3)};
  spec.input_size = 3;
  spec.swap_memory = true;
  spec.parallel_iterations = 1;  // six chunks: the oldest go to the host
  std::unique_ptr<Rnn> rnn;
  ASSERT_TRUE(Rnn::create(spec, dynrnn::Backend::kCuda, &rnn).is_ok());
  testing_support::CallBuffers<float> h(*rnn, /*T=*/6, /*B=*/3, spec.time_major);
  h.set_sine_problem(*rnn);
  ASSERT_FALSE(h.hrs.empty()) << "this spec should move chunks to the host";
  testing_support::DeviceCall<float> d(h);  // host_reserve in pinned memory

  dynrnn::ForwardArgs f = d.f;
  f.host_reserve = h.hrs.data();  // a std::vector: pageable
  expect_refused(rnn->forward(f), "forward");
  d.results();
  EXPECT_TRUE(all_nan(h.out) && all_nan(h.fin)) << "a refused forward wrote outputs";

  ASSERT_TRUE(rnn->forward(d.f).is_ok());  // pinned: runs
  dynrnn::BackwardArgs b = d.b;
  b.host_reserve = h.hrs.data();
  expect_refused(rnn->backward(b), "backward");
  d.results();
  EXPECT_TRUE(all_nan(h.dx) && all_nan(h.dw)) << "a refused backward wrote gradients";
  ASSERT_TRUE(rnn->backward(d.b).is_ok());
  d.results();
  EXPECT_FALSE(all_nan(h.dw));
}

}  // namespace
