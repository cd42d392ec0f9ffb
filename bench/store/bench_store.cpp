// Benchmarks of the hdf5 activation store, figures measured side by side in one run:
//   1. writer cost per row, and the overhead it adds to a simulated harvest (GPT-2-small-shaped
//      matmuls for 8 blocks: the work of harvesting blocks.8.hook_resid_pre on this CPU);
//   2. reader throughput from the page cache, float16 -> float32 batches of 4096 x 768, against
//      the conversion alone (ours and torch's) and an unshuffled read;
//   3. peak RSS of a fresh process reading a store 4x larger than its mixing buffer.
//
//   bench_store [--dir DIR] [--buffer-rows B] [--d D]   (store: 4 B rows, deleted afterwards)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hdf5_store.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/runtime.hpp"
#include "saelab/core/version.hpp"
#include "store_bench_lib.hpp"

using namespace saelab;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace saelab::store_bench {

namespace {
double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds (user + system, all threads) of this process: unlike wall time, not inflated when
// other processes compete for the cores.
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

StoreMeta bench_meta(std::int64_t d) {
  StoreMeta m;
  m.model_id = "bench";
  m.config_hash = "bench";
  m.hook = "blocks.8.hook_resid_pre";
  m.d = d;
  m.context_size = 128;
  m.tokenizer_sha256 = std::string(64, '0');
  m.corpus_fingerprint = "bench";
  m.saelab_version = kVersion;
  return m;
}

// 4096 rows = 32 sequences of 128 tokens, numbered from `first_seq`.
ActivationRows block(const torch::Tensor& acts, std::int64_t first_seq) {
  const std::int64_t n = acts.size(0);
  ActivationRows r;
  r.activations = acts;
  r.tokens = torch::arange(n, torch::kInt) % 50257;
  r.sequence = torch::arange(n, torch::kLong).div(128, "floor") + first_seq;
  r.position = (torch::arange(n, torch::kInt) % 128).to(torch::kInt);
  return r;
}

hdf5_store::Hdf5StoreConfig config(RowDtype dtype, std::int64_t shard_rows, std::int64_t chunk_rows) {
  return hdf5_store::Hdf5StoreConfig::with(dtype, shard_rows, chunk_rows);
}

std::uint64_t dir_bytes(const fs::path& dir) {
  std::uint64_t b = 0;
  for (const auto& e : fs::directory_iterator(dir)) b += fs::file_size(e.path());
  return b;
}

}  // namespace

WriteCost measure_write_cost(const fs::path& dir, std::int64_t d, RowDtype dtype, std::int64_t rows,
                             std::int64_t shard_rows, std::int64_t chunk_rows) {
  fs::remove_all(dir);
  const torch::Tensor acts = torch::randn({4096, d});
  auto cfg = config(dtype, shard_rows, chunk_rows);
  double durable = 0;
  Clock::time_point closed;
  cfg.test_hook = [&](const std::string& point) {
    if (point == "shard_closed") closed = Clock::now();
    if (point == "manifest_written") durable += since(closed);
  };
  auto w = hdf5_store::open_hdf5_writer(dir, bench_meta(d), false, cfg);
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  for (std::int64_t r = 0; r < rows; r += 4096) w->append(block(acts, r / 128));
  w->finish();
  WriteCost c;
  c.seconds = since(t0);
  c.cpu_us_per_row = (cpu_seconds() - cpu0) * 1e6 / double(rows);
  c.durable_seconds = durable;
  c.rows = rows;
  c.us_per_row = c.seconds * 1e6 / double(rows);
  c.bytes_per_row = double(dir_bytes(dir)) / double(rows);
  return c;
}

}  // namespace saelab::store_bench

namespace {
using namespace saelab::store_bench;

void print_write_cost(const WriteCost& wc) {
  std::printf(
      "\n[writer] %lld rows float16, shards of 131072, chunks of 1024: %.2f s = %.3f us/row "
      "(%.0f MB/s to disk)\n",
      static_cast<long long>(wc.rows), wc.seconds, wc.us_per_row, wc.bytes_per_row / wc.us_per_row);
  std::printf(
      "  CPU time %.3f us/row (user + system; the wall time above includes waiting for the disk and "
      "for cores other processes hold)\n",
      wc.cpu_us_per_row);
  std::printf(
      "  of which committing closed shards (rename, directory fsync, manifest): %.2f s = %.3f us/row\n",
      wc.durable_seconds, wc.durable_seconds * 1e6 / double(wc.rows));
  std::printf(
      "  the rest (float16 conversion, statistics, HDF5 chunks with Fletcher32 in memory, shard write + "
      "fsync + SHA-256): %.3f us/row\n",
      (wc.seconds - wc.durable_seconds) * 1e6 / double(wc.rows));
}

// The matmuls of 8 GPT-2-small blocks on [tokens, 768]: 14.2 MFLOP per token per block.
struct FakeHarvest {
  torch::Tensor wqkv = torch::randn({768, 2304}) * 0.02, wo = torch::randn({768, 768}) * 0.02,
                wfc = torch::randn({768, 3072}) * 0.02, wproj = torch::randn({3072, 768}) * 0.02;
  torch::Tensor run(const torch::Tensor& x0) const {
    torch::Tensor x = x0;
    for (int l = 0; l < 8; ++l) {
      const torch::Tensor qkv = x.mm(wqkv);
      x = x + qkv.narrow(1, 0, 768).mm(wo);
      x = x + at::gelu(x.mm(wfc)).mm(wproj);
    }
    return x;
  }
};

void bench_harvest_overhead(const fs::path& dir, const WriteCost& big_write) {
  FakeHarvest h;
  const std::int64_t rows = 2048, batches = 24;
  const torch::Tensor x = torch::randn({rows, 768});
  h.run(x);  // warm up
  auto t0 = Clock::now();
  for (int b = 0; b < batches; ++b) h.run(x);
  const double plain = since(t0);
  fs::remove_all(dir);
  auto w = hdf5_store::open_hdf5_writer(dir, bench_meta(768), false, config(RowDtype::Float16, 16384, 1024));
  t0 = Clock::now();
  for (int b = 0; b < batches; ++b) w->append(block(h.run(x), b * (rows / 128)));
  w->finish();
  const double stored = since(t0);
  const double rate = double(rows * batches) / plain;
  std::printf(
      "\n[harvest overhead] simulated harvest = 8 GPT-2-small blocks of matmuls on %lld-token batches\n",
      static_cast<long long>(rows));
  std::printf("  harvest alone         %8.0f rows/s (%.1f ms per batch)\n", rate, plain * 1e3 / batches);
  std::printf("  harvest + store       %8.0f rows/s  -> store overhead %.2f%% (measured side by side)\n",
              double(rows * batches) / stored, (stored - plain) / plain * 100.0);
  std::printf("  writer cost %.3f us/row (float16, d 768, %.0f B/row on disk) => overhead at\n",
              big_write.us_per_row, big_write.bytes_per_row);
  for (double r : {rate, 1e5, 1e6})
    std::printf("    %9.0f rows/s harvest: %6.2f%%\n", r, overhead_percent(big_write, r));
  fs::remove_all(dir);
}

struct ReadRate {
  double rows_per_s;      // wall clock
  double rows_per_cpu_s;  // per CPU second (all threads)
};

ReadRate read_rate(const fs::path& dir, ReaderOptions o, std::int64_t batches) {
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  auto r = store.open_reader(dir, o);
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  for (std::int64_t i = 0; i < batches; ++i) r->next_batch();  // every window load included
  const double rows = double(batches * o.batch_rows);
  return {rows / since(t0), rows / (cpu_seconds() - cpu0)};
}

void bench_reader(const fs::path& dir, std::int64_t buffer_rows, std::int64_t d, std::int64_t store_rows) {
  ReaderOptions o;
  o.buffer_rows = buffer_rows;
  o.batch_rows = 4096;
  const std::int64_t batches = store_rows / 4096;  // one epoch: every window load included
  const ReadRate shuffled = read_rate(dir, o, batches);
  o.shuffle = false;
  const ReadRate plain = read_rate(dir, o, batches);
  // Conversion alone for one batch: ours vs torch's Half -> Float.
  const torch::Tensor h = torch::randn({4096, d}).to(torch::kHalf);
  torch::Tensor f = torch::empty({4096, d});
  const int reps = 50;
  auto t0 = Clock::now();
  double cpu0 = cpu_seconds();
  for (int i = 0; i < reps; ++i)
    f16_to_f32(reinterpret_cast<const std::uint16_t*>(h.data_ptr()), f.data_ptr<float>(),
               static_cast<std::size_t>(h.numel()));
  const ReadRate ours{double(reps * 4096) / since(t0), double(reps * 4096) / (cpu_seconds() - cpu0)};
  t0 = Clock::now();
  cpu0 = cpu_seconds();
  for (int i = 0; i < reps; ++i) f = h.to(torch::kFloat);
  const ReadRate torchs{double(reps * 4096) / since(t0), double(reps * 4096) / (cpu_seconds() - cpu0)};
  const double out_bytes = double(d) * 4, in_bytes = double(d) * 2;
  std::printf(
      "\n[reader] float16 store, d %lld, batches of 4096, buffer %lld rows, one epoch (%lld rows) "
      "from page cache\n",
      static_cast<long long>(d), static_cast<long long>(buffer_rows), static_cast<long long>(store_rows));
  auto line = [&](const char* what, const ReadRate& r) {
    std::printf(
        "  %-34s %9.0f rows/s %6.2f GB/s out (float32) %6.2f GB/s in (float16) | %9.0f rows per CPU s\n",
        what, r.rows_per_s, r.rows_per_s * out_bytes / 1e9, r.rows_per_s * in_bytes / 1e9, r.rows_per_cpu_s);
  };
  line("shuffled reader", shuffled);
  line("unshuffled reader", plain);
  line("f16->f32 conversion only (ours)", ours);
  line("f16->f32 conversion only (torch)", torchs);
  std::printf("  shuffled / unshuffled = %.2f, ours / torch conversion = %.2f (F16C %s)\n",
              shuffled.rows_per_s / plain.rows_per_s, ours.rows_per_s / torchs.rows_per_s,
              f16c_available() ? "on" : "off");
}

// Child process: reads 1.25 epochs and reports peak RSS over its own baseline.
int rss_child(const fs::path& dir, std::int64_t buffer_rows) {
  hdf5_store::Hdf5Store store(hdf5_store::Hdf5StoreConfig{});
  torch::Tensor warm = torch::randn({4096, 768}).to(torch::kHalf).to(torch::kFloat);  // load torch's kernels
  const double base = peak_rss_mib();
  ReaderOptions o;
  o.buffer_rows = buffer_rows;
  auto r = store.open_reader(dir, o);
  const std::int64_t batches = r->rows_per_epoch() * 5 / 4 / o.batch_rows;
  for (std::int64_t i = 0; i < batches; ++i) r->next_batch();
  const double peak = peak_rss_mib();
  const double buffer_mib = double(buffer_rows * r->d() * 2) / (1 << 20);
  const double growth_mib = peak - base;
  std::printf("\n[peak RSS] store %lld rows (%.0f MiB float16) = %.1fx the buffer; read 1.25 epochs\n",
              static_cast<long long>(r->rows_per_epoch()),
              double(r->rows_per_epoch() * r->d() * 2) / (1 << 20),
              double(r->rows_per_epoch()) / double(buffer_rows));
  std::printf(
      "  baseline VmHWM %.0f MiB, peak %.0f MiB: growth %.0f MiB = %.2fx the %.0f MiB mixing buffer "
      "(target <= 1.5x + constant)\n",
      base, peak, growth_mib, growth_mib / buffer_mib, buffer_mib);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir = fs::temp_directory_path() / cat("saelab-bench-store-", ::getpid());
  std::int64_t buffer_rows = 1 << 17, d = 768;
  std::string only;  // writer | harvest | reader | rss (default: all)
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--dir")
      dir = argv[i + 1];
    else if (a == "--buffer-rows")
      buffer_rows = std::atoll(argv[i + 1]);
    else if (a == "--d")
      d = std::atoll(argv[i + 1]);
    else if (a == "--only")
      only = argv[i + 1];
    else if (a == "--rss-child")
      return rss_child(argv[i + 1], buffer_rows);
  }
  const bool all = only.empty();
  const std::int64_t store_rows = 4 * buffer_rows;
  const fs::path store = dir / "store";
  fs::create_directories(dir);
  torch::randn({64, 64}).mm(torch::randn({64, 64}));  // starts torch's thread pool
  std::printf("bench_store: d %lld, mixing buffer %lld rows, store %lld rows, %d torch threads, %u cores\n",
              static_cast<long long>(d), static_cast<long long>(buffer_rows),
              static_cast<long long>(store_rows), at::get_num_threads(), std::thread::hardware_concurrency());
  const WriteCost wc = measure_write_cost(store, d, RowDtype::Float16, store_rows, 131072, 1024);
  print_write_cost(wc);
  if (all || only == "harvest") bench_harvest_overhead(dir / "harvest", wc);
  if (all || only == "reader") bench_reader(store, buffer_rows, d, store_rows);
  int rc = 0;
  if (all || only == "rss") {
    std::fflush(stdout);
    const std::string cmd = cat("'", fs::canonical("/proc/self/exe").string(), "' --buffer-rows ",
                                buffer_rows, " --rss-child '", store.string(), "'");
    rc = std::system(cmd.c_str());
  }
  fs::remove_all(dir);
  return rc == 0 ? 0 : 1;
}
