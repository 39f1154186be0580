#include "bench/sorted_batch.h"

#include <algorithm>

#include "bench/packed_layout.h"

namespace bench {
namespace {

/// The [groups, B, width] block of v at `offset`, into the same place of dst: dst row k of each
/// group is v's row order[k] (gather), or the inverse (scatter: dst row order[k] is v's row k).
void permute_rows(const std::vector<double>& v, int64_t offset, int64_t groups, int64_t width,
                  const std::vector<int32_t>& order, bool scatter, std::vector<double>& dst) {
  const int64_t B = static_cast<int64_t>(order.size());
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t k = 0; k < B; ++k) {
      const int64_t from = scatter ? k : order[static_cast<size_t>(k)];
      const int64_t to = scatter ? order[static_cast<size_t>(k)] : k;
      const auto src = v.begin() + offset + (g * B + from) * width;
      std::copy(src, src + width, dst.begin() + offset + (g * B + to) * width);
    }
  }
}

/// A [T, B, width] sequence tensor (empty stays empty).
std::vector<double> permute_sequence(const std::vector<double>& v, int64_t T, const std::vector<int32_t>& order,
                                     bool scatter) {
  if (v.empty()) return v;
  const int64_t B = static_cast<int64_t>(order.size());
  const int64_t width = static_cast<int64_t>(v.size()) / (T * B);
  if (width * T * B != static_cast<int64_t>(v.size())) throw BenchError("permute_sequence: size mismatch");
  std::vector<double> out(v.size());
  permute_rows(v, 0, T, width, order, scatter, out);
  return out;
}

/// A flat state [state_width leaves of B rows] (empty stays empty): each leaf's rows move.
std::vector<double> permute_state(const Problem& p, const std::vector<double>& v, const std::vector<int32_t>& order,
                                  bool scatter) {
  if (v.empty()) return v;
  if (static_cast<int64_t>(v.size()) != p.state_elems()) throw BenchError("permute_state: size mismatch");
  std::vector<double> out(v.size());
  for (const dynrnn::StateLeaf& leaf : p.state) {
    permute_rows(v, p.shape.B * leaf.column_offset, 1, leaf.width, order, scatter, out);
  }
  return out;
}

class SortedBatchRunner final : public Runner {
 public:
  SortedBatchRunner(const Problem& p, const std::function<std::unique_ptr<Runner>(const Problem&)>& make)
      : p_(p),
        order_(make_packed_layout(p.lengths, p.shape.T).order),
        sorted_(reorder_batch(p, order_)),
        inner_(make(sorted_)) {}

  void run(Mode mode, int set) override { inner_->run(mode, set); }
  HostResult fetch(bool grads) override { return restore_batch_order(p_, order_, inner_->fetch(grads)); }
  size_t workspace_bytes() const override { return inner_->workspace_bytes(); }
  size_t reserve_bytes() const override { return inner_->reserve_bytes(); }
  size_t host_reserve_bytes() const override { return inner_->host_reserve_bytes(); }
  std::string unverifiable_reason() const override { return inner_->unverifiable_reason(); }

 private:
  const Problem& p_;
  std::vector<int32_t> order_;
  Problem sorted_;  ///< the runner below reads it for its whole life
  std::unique_ptr<Runner> inner_;
};

}  // namespace

Problem reorder_batch(const Problem& p, const std::vector<int32_t>& order) {
  if (static_cast<int64_t>(order.size()) != p.shape.B) throw BenchError("reorder_batch: order is not [B]");
  Problem q = p;
  const int64_t T = p.shape.T;
  for (size_t k = 0; k < order.size(); ++k) q.lengths[k] = p.lengths[static_cast<size_t>(order[k])];
  for (size_t s = 0; s < p.sets.size(); ++s) {
    q.sets[s].x = permute_sequence(p.sets[s].x, T, order, false);
    q.sets[s].dy_fw = permute_sequence(p.sets[s].dy_fw, T, order, false);
    q.sets[s].dy_bw = permute_sequence(p.sets[s].dy_bw, T, order, false);
  }
  return q;
}

HostResult restore_batch_order(const Problem& p, const std::vector<int32_t>& order, const HostResult& r) {
  const int64_t T = p.shape.T;
  HostResult out = r;  // dw does not depend on the order of the rows (up to the order of its sums)
  out.out_fw = permute_sequence(r.out_fw, T, order, true);
  out.out_bw = permute_sequence(r.out_bw, T, order, true);
  out.dx = permute_sequence(r.dx, T, order, true);
  out.final_state = permute_state(p, r.final_state, order, true);
  out.dinit = permute_state(p, r.dinit, order, true);
  return out;
}

std::unique_ptr<Runner> make_sorted_batch_runner(const Problem& p,
                                                 const std::function<std::unique_ptr<Runner>(const Problem&)>& make) {
  return std::make_unique<SortedBatchRunner>(p, make);
}

}  // namespace bench
