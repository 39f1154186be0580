// Fault injection at the level of the CUDA runtime and cuBLAS: on the emulated device every call the
// library makes while creating a handle and running a training forward + backward (stream, event
// and handle creation, cudaMalloc of the cuBLAS workspaces, cudaHostAlloc of swap buffers, every
// launch, copy, event record and wait, every cuBLAS binding and GEMM) is made to fail in turn. Each
// failure must come back as a status naming the failed call; no device memory, pinned memory,
// stream, event or cuBLAS handle may be left behind once the handle is gone; and a handle that
// survived the failure must then give a fresh handle's results bit for bit.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "device_call.h"
#include "fault_configurations.h"
#include "hooks.h"
#include "host/element_types.h"

namespace {

using dynrnn::Backend;
using dynrnn::Rnn;
using dynrnn::RnnSpec;
using dynrnn::Status;
using dynrnn::StatusCode;
using testing_support::Call;
using testing_support::DeviceCall;

/// A Call and its device copy.
template <typename T>
struct DeviceCallOf {
  explicit DeviceCallOf(Rnn& rnn) : host(rnn), device(host) {}
  Call<T> host;
  DeviceCall<T> device;
};

/// Creates a handle, then runs a training forward and a backward, with the n-th counted call failing
/// (n = 0: none); *counted is how many calls were counted. Returns the first failure; *rnn keeps the
/// handle if its creation succeeded. The call's buffers are made first, outside the counted window,
/// with a handle of their own for the size queries.
template <typename T>
Status create_and_train(const RnnSpec& spec, int64_t n, std::unique_ptr<Rnn>* rnn,
                        std::unique_ptr<DeviceCallOf<T>>* call, int64_t* counted) {
  {
    std::unique_ptr<Rnn> sizing;
    const Status st = Rnn::create(spec, Backend::kCuda, &sizing);
    if (!st) return st;
    call->reset(new DeviceCallOf<T>(*sizing));
  }
  cuda_emulation::fail_nth_call(n);
  Status st = Rnn::create(spec, Backend::kCuda, rnn);
  if (st) st = (*rnn)->forward((*call)->device.f);
  if (st) st = (*rnn)->backward((*call)->device.b);
  *counted = cuda_emulation::counted_calls();
  cuda_emulation::fail_nth_call(0);
  return st;
}

template <typename T>
void call_faults(const RnnSpec& spec) {
  const cuda_emulation::Resources before = cuda_emulation::resources();
  std::vector<uint8_t> want;
  int64_t total = 0;
  {
    std::unique_ptr<Rnn> rnn;
    std::unique_ptr<DeviceCallOf<T>> call;
    ASSERT_TRUE(create_and_train<T>(spec, 0, &rnn, &call, &total).is_ok());
    want = call->device.results();
  }
  ASSERT_GT(total, 10);
  ASSERT_EQ(cuda_emulation::resources(), before) << "a clean run left resources behind";
  for (int64_t n = 1; n <= total; ++n) {
    SCOPED_TRACE("failing counted call " + std::to_string(n) + " of " + std::to_string(total));
    {
      std::unique_ptr<Rnn> rnn;
      std::unique_ptr<DeviceCallOf<T>> call;
      int64_t counted = 0;
      const Status st = create_and_train<T>(spec, n, &rnn, &call, &counted);
      ASSERT_GE(counted, n);
      ASSERT_FALSE(st.is_ok()) << "the failed call was not reported";
      EXPECT_TRUE(st.code() == StatusCode::kCudaError || st.code() == StatusCode::kCublasError ||
                  st.code() == StatusCode::kAllocationFailed)
          << st.to_string();
      const std::string failed = cuda_emulation::failed_call();
      ASSERT_FALSE(failed.empty()) << "no call failed";
      EXPECT_NE(st.message().find(failed), std::string::npos)
          << "the status does not name the failed call " << failed << ": " << st.to_string();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess) << "the failure left the device in an error state";
      if (rnn) {  // the handle survived: it must work as a fresh one
        call->device.poison();
        ASSERT_TRUE(rnn->forward(call->device.f).is_ok());
        ASSERT_TRUE(rnn->backward(call->device.b).is_ok());
        ASSERT_EQ(call->device.results(), want) << "the handle is not usable after the failure";
      }
    }
    const cuda_emulation::Resources after = cuda_emulation::resources();
    ASSERT_EQ(after.device_bytes, before.device_bytes) << "device memory leaked";
    ASSERT_EQ(after.pinned_bytes, before.pinned_bytes) << "pinned host memory leaked";
    ASSERT_EQ(after.streams, before.streams) << "a stream leaked";
    ASSERT_EQ(after.events, before.events) << "an event leaked";
    ASSERT_EQ(after.blas_handles, before.blas_handles) << "a cuBLAS handle leaked";
  }
}

TEST(CudaFaultInjection, EveryCudaAndCublasCallFailureIsReportedLeakFreeAndRecoverable) {
  for (const RnnSpec& spec : testing_support::configurations()) {
    SCOPED_TRACE(testing_support::describe(spec));
    dynrnn::dispatch_dtype(spec.dtype, [&](auto tag) { call_faults<typename decltype(tag)::type>(spec); });
  }
}

}  // namespace
