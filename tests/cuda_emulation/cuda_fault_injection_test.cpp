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

/// Device copies of a Call's buffers (pinned memory for host_reserve) and its arguments, pointing
/// at them; host_sequence_length stays on the host.
template <typename T>
class DeviceCall {
 public:
  explicit DeviceCall(Rnn& rnn) : h_(rnn) {
    for (auto* v : {&h_.x, &h_.w, &h_.init, &h_.dout, &h_.dout_bw, &h_.dfin}) mirror(v->data(), bytes(*v), true);
    mirror(h_.len.data(), h_.len.size() * sizeof(int32_t), true);
    for (auto* v : {&h_.out, &h_.out_bw, &h_.fin, &h_.dx, &h_.dinit, &h_.dw}) mirror(v->data(), bytes(*v), false);
    mirror(h_.ws.data(), h_.ws.size(), false);
    mirror(h_.rs.data(), h_.rs.size(), false);
    if (!h_.hrs.empty()) {
      EXPECT_EQ(cudaHostAlloc(&pinned_, h_.hrs.size(), cudaHostAllocDefault), cudaSuccess);
      to_device_[h_.hrs.data()] = pinned_;
    }
    f = h_.f;
    for (const void** p : {&f.x, &f.initial_state, &f.weights}) *p = device(*p);
    for (void** p : {&f.outputs, &f.outputs_bw, &f.final_state, &f.workspace, &f.reserve, &f.host_reserve}) {
      *p = const_cast<void*>(device(*p));
    }
    f.sequence_length = static_cast<const int32_t*>(device(f.sequence_length));
    b = h_.b;
    for (const void** p : {&b.x, &b.initial_state, &b.weights, &b.grad_outputs, &b.grad_outputs_bw, &b.grad_final_state,
                           &b.reserve, &b.host_reserve}) {
      *p = device(*p);
    }
    for (void** p : {&b.grad_inputs, &b.grad_initial_state, &b.grad_weights, &b.workspace}) {
      *p = const_cast<void*>(device(*p));
    }
    b.sequence_length = static_cast<const int32_t*>(device(b.sequence_length));
    poison();
  }
  ~DeviceCall() {
    for (void* p : allocations_) (void)cudaFree(p);
    if (pinned_) (void)cudaFreeHost(pinned_);
  }
  DeviceCall(const DeviceCall&) = delete;
  DeviceCall& operator=(const DeviceCall&) = delete;

  /// NaN into every result, workspace and reserve byte.
  void poison() {
    for (auto* v : {&h_.out, &h_.out_bw, &h_.fin, &h_.dx, &h_.dinit, &h_.dw}) set(v->data(), bytes(*v));
    set(h_.ws.data(), h_.ws.size());
    set(h_.rs.data(), h_.rs.size());
  }

  /// The result bytes in CallBuffers::results() order, after the device has finished.
  std::vector<uint8_t> results() {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    for (auto* v : {&h_.out, &h_.out_bw, &h_.fin, &h_.dx, &h_.dinit, &h_.dw}) {
      if (!v->empty())
        EXPECT_EQ(cudaMemcpy(v->data(), device(v->data()), bytes(*v), cudaMemcpyDeviceToHost), cudaSuccess);
    }
    return h_.results();
  }

  dynrnn::ForwardArgs f;
  dynrnn::BackwardArgs b;

 private:
  template <typename V>
  static size_t bytes(const std::vector<V>& v) {
    return v.size() * sizeof(V);
  }
  void mirror(const void* host, size_t n, bool upload) {
    if (n == 0) return;
    void* d = nullptr;
    EXPECT_EQ(cudaMalloc(&d, n), cudaSuccess);
    allocations_.push_back(d);
    to_device_[host] = d;
    if (upload) EXPECT_EQ(cudaMemcpy(d, host, n, cudaMemcpyHostToDevice), cudaSuccess);
  }
  const void* device(const void* host) const {
    if (host == nullptr) return nullptr;
    auto it = to_device_.find(host);
    EXPECT_NE(it, to_device_.end()) << "an argument points at no buffer of the call";
    return it == to_device_.end() ? nullptr : it->second;
  }
  void set(const void* host, size_t n) {
    if (n > 0) EXPECT_EQ(cudaMemset(const_cast<void*>(device(host)), 0xFF, n), cudaSuccess);
  }

  Call<T> h_;
  std::map<const void*, void*> to_device_;
  std::vector<void*> allocations_;
  void* pinned_ = nullptr;
};

/// Creates a handle, then runs a training forward and a backward, with the n-th counted call failing
/// (n = 0: none); *counted is how many calls were counted. Returns the first failure; *rnn keeps the
/// handle if its creation succeeded. The call's buffers are made first, outside the counted window,
/// with a handle of their own for the size queries.
template <typename T>
Status create_and_train(const RnnSpec& spec, int64_t n, std::unique_ptr<Rnn>* rnn, std::unique_ptr<DeviceCall<T>>* call,
                        int64_t* counted) {
  {
    std::unique_ptr<Rnn> sizing;
    const Status st = Rnn::create(spec, Backend::kCuda, &sizing);
    if (!st) return st;
    call->reset(new DeviceCall<T>(*sizing));
  }
  cuda_emulation::fail_nth_call(n);
  Status st = Rnn::create(spec, Backend::kCuda, rnn);
  if (st) st = (*rnn)->forward((*call)->f);
  if (st) st = (*rnn)->backward((*call)->b);
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
    std::unique_ptr<DeviceCall<T>> call;
    ASSERT_TRUE(create_and_train<T>(spec, 0, &rnn, &call, &total).is_ok());
    want = call->results();
  }
  ASSERT_GT(total, 10);
  ASSERT_EQ(cuda_emulation::resources(), before) << "a clean run left resources behind";
  for (int64_t n = 1; n <= total; ++n) {
    SCOPED_TRACE("failing counted call " + std::to_string(n) + " of " + std::to_string(total));
    {
      std::unique_ptr<Rnn> rnn;
      std::unique_ptr<DeviceCall<T>> call;
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
        call->poison();
        ASSERT_TRUE(rnn->forward(call->f).is_ok());
        ASSERT_TRUE(rnn->backward(call->b).is_ok());
        ASSERT_EQ(call->results(), want) << "the handle is not usable after the failure";
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
