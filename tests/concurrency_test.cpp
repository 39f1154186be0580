// Thread safety (rnn.h): one handle serves one thread at a time; distinct handles are independent.
// Several std::threads each create their own handles (different cells, directions, layouts, every
// dtype, swap_memory, recompute) and run forward + backward on them many times, all at once; every
// result must equal bit for bit what the same handle configuration gives in a single-threaded run.
// Handles are also created and destroyed while others run. (CPU backend: the stream argument is
// ignored; the GPU variant with one stream per thread belongs to tests/gpu_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "call_buffers.h"
#include "dtype_support.h"
#include "dynrnn/rnn.h"
#include "library_adapter.h"
#include "random_problem.h"

namespace {

using dynrnn::Backend;
using dynrnn::Rnn;
using dynrnn::RnnSpec;

struct Job {
  ref::Problem p;
  ref::Upstream u;
  RnnSpec spec;
};

/// All output bytes of one forward + backward.
using Bytes = std::vector<uint8_t>;

/// Forward (training) + backward of job `j` on `rnn`; false (and *error) on a failed call.
template <typename T>
bool run(Rnn& rnn, const Job& j, Bytes* out, std::string* error) {
  testing_support::CallBuffers<T> c(rnn, j.p.T, j.p.B, j.p.time_major);
  if (!c.ok()) {
    *error = c.error;
    return false;
  }
  testing_support::fill_bytes(c.ws, 0x5A);
  testing_support::fill_bytes(c.rs, 0x5A);
  testing_support::fill_bytes(c.hrs, 0x5A);
  c.set_problem(rnn, j.p);
  dynrnn::Status st = rnn.forward(c.forward_args());
  if (!st.is_ok()) {
    *error = "forward: " + st.to_string();
    return false;
  }
  c.set_upstream(rnn, j.u);
  st = rnn.backward(c.backward_args());
  if (!st.is_ok()) {
    *error = "backward: " + st.to_string();
    return false;
  }
  *out = c.results();
  return true;
}

bool run_any(Rnn& rnn, const Job& j, Bytes* out, std::string* error) {
  return testing_support::with_element_type(
      j.spec.dtype, [&](auto tag) { return run<typename decltype(tag)::type>(rnn, j, out, error); });
}

std::vector<Job> make_jobs(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  testing_support::ProblemOptions opt;
  opt.max_time = 10;
  opt.max_batch = 5;
  std::vector<Job> jobs;
  for (int i = 0; i < n; ++i) {
    Job j;
    j.p = testing_support::random_problem(rng, opt);
    j.u = testing_support::random_upstream(j.p, rng);
    // Every element type, float32 most often.
    static const dynrnn::DataType kDtypes[] = {dynrnn::DataType::kFloat32, dynrnn::DataType::kBFloat16,
                                               dynrnn::DataType::kFloat64, dynrnn::DataType::kFloat32,
                                               dynrnn::DataType::kFloat16};
    j.spec = testing_support::spec_from_problem(j.p, kDtypes[i % 5]);
    j.spec.parallel_iterations = 1 + static_cast<int>(rng() % 5);
    j.spec.swap_memory = i % 4 == 1;
    j.spec.recompute = i % 5 == 3;
    jobs.push_back(std::move(j));
  }
  return jobs;
}

TEST(Concurrency, HandlesOnSeparateThreadsMatchSingleThreadedRuns) {
  constexpr int kThreads = 6, kJobsPerThread = 4, kRounds = 25;
  const std::vector<Job> jobs = make_jobs(kThreads * kJobsPerThread, 0xC0C0);
  // Single-threaded expectations, one fresh handle per job.
  std::vector<Bytes> want(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    std::unique_ptr<Rnn> rnn;
    ASSERT_TRUE(Rnn::create(jobs[i].spec, Backend::kCpu, &rnn).is_ok());
    std::string error;
    ASSERT_TRUE(run_any(*rnn, jobs[i], &want[i], &error)) << "job " << i << ": " << error;
  }
  // Each thread owns its jobs' handles (kept across rounds) and also makes a throwaway handle per
  // round, so creation and destruction overlap other threads' calls.
  std::atomic<int> mismatches{0}, failures{0}, done{0};
  std::vector<std::string> first_error(kThreads);
  std::atomic<bool> go{false};
  auto worker = [&](int t) {
    std::vector<std::unique_ptr<Rnn>> handles(kJobsPerThread);
    for (int k = 0; k < kJobsPerThread; ++k) {
      if (!Rnn::create(jobs[t * kJobsPerThread + k].spec, Backend::kCpu, &handles[k]).is_ok()) {
        ++failures;
        return;
      }
    }
    while (!go.load()) std::this_thread::yield();
    for (int round = 0; round < kRounds; ++round) {
      for (int k = 0; k < kJobsPerThread; ++k) {
        const size_t i = static_cast<size_t>(t * kJobsPerThread + (k + round) % kJobsPerThread);
        Rnn& rnn = *handles[(k + round) % kJobsPerThread];
        Bytes got;
        std::string error;
        if (!run_any(rnn, jobs[i], &got, &error)) {
          if (failures++ == 0) first_error[t] = error;
          continue;
        }
        if (got != want[i] && mismatches++ == 0) first_error[t] = "job " + std::to_string(i) + " differs";
        ++done;
      }
      std::unique_ptr<Rnn> throwaway;
      const Job& other = jobs[(t * kJobsPerThread + round) % jobs.size()];
      if (Rnn::create(other.spec, Backend::kCpu, &throwaway).is_ok()) {
        Bytes got;
        std::string error;
        const size_t i = (t * kJobsPerThread + round) % jobs.size();
        if (!run_any(*throwaway, other, &got, &error) || got != want[i]) ++mismatches;
      } else {
        ++failures;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  go = true;
  for (std::thread& th : threads) th.join();
  std::string errors;
  for (const std::string& e : first_error) {
    if (!e.empty()) errors += e + "\n";
  }
  EXPECT_EQ(failures.load(), 0) << errors;
  EXPECT_EQ(mismatches.load(), 0) << errors;
  EXPECT_EQ(done.load(), kThreads * kJobsPerThread * kRounds);
}

/// One configuration, one handle per thread, the same inputs: every thread's results are the
/// single-threaded ones (no hidden shared state between handles of the same spec, e.g. swap buffers).
TEST(Concurrency, SameSpecOnManyHandlesAtOnce) {
  Job j;
  for (const Job& candidate : make_jobs(16, 0xC0C2)) {
    if (candidate.p.T >= 4 && candidate.p.B > 0) {
      j = candidate;
      break;
    }
  }
  ASSERT_GE(j.p.T, 4);
  j.spec.swap_memory = true;  // one-step chunks, most of them in host memory
  j.spec.parallel_iterations = 1;
  std::unique_ptr<Rnn> single;
  ASSERT_TRUE(Rnn::create(j.spec, Backend::kCpu, &single).is_ok());
  Bytes want;
  std::string error;
  ASSERT_TRUE(run_any(*single, j, &want, &error)) << error;
  constexpr int kThreads = 8;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::unique_ptr<Rnn> rnn;
      if (!Rnn::create(j.spec, Backend::kCpu, &rnn).is_ok()) {
        ++bad;
        return;
      }
      for (int round = 0; round < 10; ++round) {
        Bytes got;
        std::string e;
        if (!run_any(*rnn, j, &got, &e) || got != want) ++bad;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

}  // namespace
