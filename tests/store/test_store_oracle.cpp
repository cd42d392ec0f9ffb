// h5py as an independent reader: a store written by saelab, decoded by h5py/numpy, must give back
// the rows, provenance and attributes the test wrote (activations rounded the way torch rounds).
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <gtest/gtest.h>

#include "store_test_util.hpp"

using namespace saelab;
using namespace saelab::store_test;
namespace fs = std::filesystem;

namespace {

std::string oracle_python() {
  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  return py ? py : "";
}

template <class T>
torch::Tensor read_raw(const fs::path& p, torch::ScalarType st, std::vector<std::int64_t> shape) {
  const std::string bytes = read_bytes(p);
  torch::Tensor t = torch::empty(shape, st);
  EXPECT_EQ(bytes.size(), static_cast<std::size_t>(t.numel()) * sizeof(T)) << p;
  std::memcpy(t.data_ptr(), bytes.data(), std::min<std::size_t>(bytes.size(), t.nbytes()));
  return t;
}

}  // namespace

class StoreOracle : public ::testing::TestWithParam<RowDtype> {};

TEST_P(StoreOracle, H5pyReadsWhatSaelabWrote) {
  const std::string py = oracle_python();
  ASSERT_FALSE(py.empty())
      << "SAELAB_ORACLE_PYTHON is not set. This test needs the Python oracle (h5py, numpy): run "
         "`scripts/setup.sh --oracle` and export SAELAB_ORACLE_PYTHON=<venv>/bin/python";
  const RowDtype dtype = GetParam();
  const std::int64_t d = 10, nseq = 40;
  TempDir dir(cat("oracle-", row_dtype_name(dtype)));
  const fs::path store = dir / "store", out = dir / "out";
  fs::create_directories(out);
  harvest(store, test_config(dtype, 150, 24), d, nseq, 6, false);

  const std::string cmd = cat("'", py, "' '", SAELAB_SOURCE_DIR, "/tests/store/h5py_oracle.py' '",
                              store.string(), "' '", out.string(), "'");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  const ActivationRows want = synth_rows(0, nseq, d);
  const std::int64_t n = want.activations.size(0);
  const torch::Tensor act = read_raw<float>(out / "activations.f32", torch::kFloat, {n, d});
  const double err = (act - rounded(want.activations, dtype)).abs().max().item<double>();
  std::printf("h5py oracle (%s): max |diff| vs torch-rounded rows = %g over %lld x %lld\n",
              row_dtype_name(dtype), err, static_cast<long long>(n), static_cast<long long>(d));
  EXPECT_EQ(err, 0.0);
  EXPECT_TRUE(read_raw<std::int32_t>(out / "tokens.i32", torch::kInt, {n}).equal(want.tokens));
  EXPECT_TRUE(read_raw<std::int64_t>(out / "sequence.i64", torch::kLong, {n}).equal(want.sequence));
  EXPECT_TRUE(read_raw<std::int32_t>(out / "position.i32", torch::kInt, {n}).equal(want.position));

  const auto report = nlohmann::json::parse(read_bytes(out / "report.json"));
  const StoreMeta meta = test_meta(d);
  const char* np_dtype = dtype == RowDtype::Float32   ? "float32"
                         : dtype == RowDtype::Float16 ? "float16"
                                                      : "uint16";
  ASSERT_GE(report["shards"].size(), 2u);
  for (const auto& sh : report["shards"]) {
    const auto& a = sh["attrs"];
    EXPECT_EQ(a["format"], "saelab-activation-shard");
    EXPECT_EQ(a["model_id"], meta.model_id);
    EXPECT_EQ(a["config_hash"], meta.config_hash);
    EXPECT_EQ(a["hook"], meta.hook);
    EXPECT_EQ(a["d"], d);
    EXPECT_EQ(a["dtype"], row_dtype_name(dtype));
    EXPECT_EQ(a["context_size"], meta.context_size);
    EXPECT_EQ(a["prepend_bos"], 1);
    EXPECT_EQ(a["exclude_bos"], 1);
    EXPECT_EQ(a["tokenizer_sha256"], meta.tokenizer_sha256);
    EXPECT_EQ(a["corpus_fingerprint"], meta.corpus_fingerprint);
    EXPECT_EQ(a["saelab_version"], meta.saelab_version);
    EXPECT_EQ(sh["activations_dtype"], np_dtype);
    EXPECT_EQ(sh["encoding"], dtype == RowDtype::BFloat16 ? "bfloat16" : "");
    EXPECT_EQ(sh["chunks"], nlohmann::json::array({24, d}));
    EXPECT_TRUE(sh["fletcher32"].get<bool>());
    EXPECT_EQ(sh["tokens_dtype"], "int32");
    EXPECT_EQ(sh["sequence_dtype"], "int64");
    EXPECT_EQ(sh["position_dtype"], "int32");
  }
  std::printf("h5py %s / HDF5 %s read %zu shards\n", report["h5py"].get<std::string>().c_str(),
              report["hdf5"].get<std::string>().c_str(), report["shards"].size());
}

INSTANTIATE_TEST_SUITE_P(Dtypes, StoreOracle,
                         ::testing::Values(RowDtype::Float32, RowDtype::Float16, RowDtype::BFloat16),
                         [](const auto& p) { return std::string(row_dtype_name(p.param)); });
