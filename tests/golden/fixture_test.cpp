// Sanity checks of the golden fixtures and of the loader itself.
// Needs the compile definition DYNRNN_GOLDEN_DIR (string literal).
#include "fixture.h"

#include <gtest/gtest.h>

#include <string>

#ifndef DYNRNN_GOLDEN_DIR
#error "DYNRNN_GOLDEN_DIR must be defined (directory holding the *.txt fixtures)"
#endif

namespace {

int64_t product(const std::vector<int64_t>& dims) {
  int64_t p = 1;
  for (int64_t d : dims) p *= d;
  return p;
}

TEST(GoldenFixture, AtLeastFortyFixtures) {
  auto files = golden::list_fixtures(DYNRNN_GOLDEN_DIR);
  EXPECT_GE(files.size(), 40u) << "in " << DYNRNN_GOLDEN_DIR;
}

TEST(GoldenFixture, AllFixturesLoadAndAreConsistent) {
  auto files = golden::list_fixtures(DYNRNN_GOLDEN_DIR);
  ASSERT_FALSE(files.empty());
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    golden::Fixture fx;
    ASSERT_NO_THROW(fx = golden::load_fixture(path));
    ASSERT_FALSE(fx.name.empty());
    const int64_t T = fx.meta_int("T"), B = fx.meta_int("B"), D = fx.meta_int("D");
    const std::string& dtype = fx.meta_str("dtype");
    EXPECT_TRUE(dtype == "float32" || dtype == "float64") << dtype;
    const bool time_major = fx.meta_int("time_major") != 0;
    const bool bidi = fx.meta_int("bidirectional") != 0;

    // Every tensor: product(dims) == number of values.
    for (const auto& kv : fx.tensors)
      EXPECT_EQ(product(kv.second.dims), static_cast<int64_t>(kv.second.values.size())) << kv.first;

    const golden::Tensor& x = fx.at("x");
    EXPECT_EQ(static_cast<int64_t>(x.values.size()), T * B * D);
    ASSERT_EQ(x.dims.size(), 3u);
    if (time_major) {
      EXPECT_EQ(x.dims, (std::vector<int64_t>{T, B, D}));
    } else {
      EXPECT_EQ(x.dims, (std::vector<int64_t>{B, T, D}));
    }
    EXPECT_EQ(fx.at("grad/x").dims, x.dims);
    EXPECT_EQ(fx.has("seq_len"), fx.meta_int("has_seq_len") != 0);
    if (fx.has("seq_len")) {
      EXPECT_EQ(fx.at("seq_len").dims, (std::vector<int64_t>{B}));
    }

    // Cells match the layer counts.
    EXPECT_EQ(static_cast<int64_t>(fx.cells_of("fw").size()), fx.meta_int("layers_fw"));
    EXPECT_EQ(static_cast<int64_t>(fx.cells_of("bw").size()), fx.meta_int("layers_bw"));
    EXPECT_EQ(fx.cells_of("bw").empty(), !bidi);
    for (const auto* c : fx.cells_of("fw")) EXPECT_TRUE(c->attrs.count("kind"));

    // Outputs and upstream gradients.
    EXPECT_TRUE(fx.has("out/fw"));
    EXPECT_TRUE(fx.has("dout/fw"));
    EXPECT_EQ(fx.has("out/bw"), bidi);

    // Every weight with a TF name has a gradient of the same shape.
    EXPECT_FALSE(fx.tf_names.empty());
    for (const auto& kv : fx.tf_names) {
      ASSERT_TRUE(fx.has(kv.first)) << kv.first;
      ASSERT_TRUE(fx.has("grad/" + kv.first)) << kv.first;
      EXPECT_EQ(fx.at("grad/" + kv.first).dims, fx.at(kv.first).dims) << kv.first;
    }
    // Every final-state leaf has its upstream gradient.
    for (const auto& kv : fx.tensors) {
      if (kv.first.rfind("final/", 0) == 0) {
        ASSERT_TRUE(fx.has("d" + kv.first)) << kv.first;
        EXPECT_EQ(fx.at("d" + kv.first).dims, kv.second.dims) << kv.first;
      }
      if (kv.first.rfind("init/", 0) == 0) {
        EXPECT_TRUE(fx.has("grad/" + kv.first)) << kv.first;
      }
    }
  }
}

TEST(GoldenFixture, MissingTensorThrows) {
  auto files = golden::list_fixtures(DYNRNN_GOLDEN_DIR);
  ASSERT_FALSE(files.empty());
  golden::Fixture fx = golden::load_fixture(files.front());
  EXPECT_THROW(fx.at("no/such/tensor"), std::runtime_error);
  EXPECT_THROW(fx.meta_int("no_such_key"), std::runtime_error);
  EXPECT_THROW(golden::load_fixture(std::string(DYNRNN_GOLDEN_DIR) + "/does_not_exist.txt"), std::runtime_error);
}

}  // namespace
