#include "bench/graph_runner.h"

#include <map>
#include <utility>

#include "bench/cuda_check.h"

namespace bench {
namespace {

class GraphRunner final : public Runner {
 public:
  GraphRunner(std::unique_ptr<Runner> inner, cudaStream_t stream) : inner_(std::move(inner)), stream_(stream) {}
  ~GraphRunner() override {
    for (auto& kv : execs_) (void)cudaGraphExecDestroy(kv.second);
  }

  void run(Mode mode, int set) override {
    const std::pair<int, int> key{static_cast<int>(mode), set};
    auto it = execs_.find(key);
    if (it == execs_.end()) {
      // The first run of a (mode, set) captures its calls into a graph (capture executes nothing);
      // every run, that one included, launches the graph.
      cudaGraph_t graph = nullptr;
      BENCH_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal));
      inner_->run(mode, set);
      BENCH_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
      (void)cudaGraphDestroy(graph);
      BENCH_CUDA_CHECK(e);
      it = execs_.emplace(key, exec).first;
    }
    BENCH_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  }
  HostResult fetch(bool grads) override { return inner_->fetch(grads); }
  size_t workspace_bytes() const override { return inner_->workspace_bytes(); }
  size_t reserve_bytes() const override { return inner_->reserve_bytes(); }
  size_t host_reserve_bytes() const override { return inner_->host_reserve_bytes(); }
  std::string unverifiable_reason() const override { return inner_->unverifiable_reason(); }

 private:
  std::unique_ptr<Runner> inner_;
  cudaStream_t stream_;
  std::map<std::pair<int, int>, cudaGraphExec_t> execs_;
};

}  // namespace

std::unique_ptr<Runner> make_graph_runner(std::unique_ptr<Runner> inner, cudaStream_t stream) {
  return std::make_unique<GraphRunner>(std::move(inner), stream);
}

}  // namespace bench
