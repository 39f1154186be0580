// tests/device_call.h — a forward + backward call of CallBuffers (call_buffers.h), mirrored into
// device memory for the CUDA backend (on a GPU, or on the emulated device of tests/cuda_emulation).
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <vector>

#include "call_buffers.h"

namespace testing_support {

/// Device copies of the buffers of a CallBuffers (pinned memory for host_reserve), and the call's
/// arguments pointing at them; host_sequence_length stays on the host. The results start as NaN.
template <typename T>
class DeviceCall {
 public:
  /// Uploads the inputs as they are now (problem and upstream); `training` as forward_args().
  explicit DeviceCall(CallBuffers<T>& h, bool training = true) : h_(h) {
    for (auto* v : {&h_.x, &h_.w, &h_.init, &h_.dout, &h_.dout_bw, &h_.dfin}) mirror(v->data(), bytes(*v), true);
    mirror(h_.len.data(), h_.len.size() * sizeof(int32_t), true);
    for (auto* v : {&h_.out, &h_.out_bw, &h_.fin, &h_.dx, &h_.dinit, &h_.dw}) mirror(v->data(), bytes(*v), false);
    mirror(h_.ws.data(), h_.ws.size(), false);
    mirror(h_.rs.data(), h_.rs.size(), false);
    if (!h_.hrs.empty()) {
      EXPECT_EQ(cudaHostAlloc(&pinned_, h_.hrs.size(), cudaHostAllocDefault), cudaSuccess);
      to_device_[h_.hrs.data()] = pinned_;
    }
    f = h_.forward_args(training);
    for (const void** p : {&f.x, &f.initial_state, &f.weights}) *p = device(*p);
    for (void** p : {&f.outputs, &f.outputs_bw, &f.final_state, &f.workspace, &f.reserve, &f.host_reserve}) {
      *p = const_cast<void*>(device(*p));
    }
    f.sequence_length = static_cast<const int32_t*>(device(f.sequence_length));
    b = h_.backward_args();
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

  /// NaN into every workspace byte (between forward and backward: the workspace keeps nothing).
  void poison_workspace() { set(h_.ws.data(), h_.ws.size()); }

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

  CallBuffers<T>& h_;
  std::map<const void*, void*> to_device_;
  std::vector<void*> allocations_;
  void* pinned_ = nullptr;
};

}  // namespace testing_support
