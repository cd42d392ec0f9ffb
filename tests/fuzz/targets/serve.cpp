// saelab serve's request handling: raw bytes through the server's HTTP parser and limits, then the
// explorer's routes and JSON API on a small random GPT-2 with a random SAE (made once at start).
// Asserted: every answer has a status the explorer documents (200, 400, 404, 405, 413, 422), and
// nothing throws: a throw would reach the client as a 500.
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <ATen/ATen.h>

#include "../fuzz_support.hpp"
#include "saelab/formats/sae_dir.hpp"
#include "saelab/serve/explorer.hpp"
#include "saelab/stages/inspect.hpp"

#ifndef SAELAB_SOURCE_DIR
#error "SAELAB_SOURCE_DIR must name the source tree (its data/ holds GPT-2's tokenizer)"
#endif

namespace {
namespace fs = std::filesystem;

constexpr std::int64_t kDIn = 64, kDSae = 128;

struct Server {
  saelab::Inspection inspection;
  std::unique_ptr<saelab::Explorer> explorer;
  saelab::HttpLimits limits;
};

Server& server() {
  static Server s;
  return s;
}

fs::path write_experiment(const fs::path& dir) {
  const fs::path data = fs::path(SAELAB_SOURCE_DIR) / "data";
  const fs::path file = dir / "serve.yaml";
  saelab::fuzz::write_file(
      file,
      saelab::cat("name: fuzz-serve\nthreads: 1\nsource: {plugin: gpt2, init: random, n_layer: 2, n_head: 4, "
                  "n_embd: ",
                  kDIn, ", n_positions: 128, seed: 1, random_dir: ", (dir / "gpt2").string(),
                  ", tokenizer: ", (data / "gpt2-tokenizer").string(), "}\ncorpus: {paths: [",
                  (data / "corpus" / "sotu").string(),
                  "], context_size: 32}\n"
                  "harvest: {hook: blocks.1.hook_resid_pre, tokens: 1000}\n"));
  return file;
}

fs::path write_sae(const fs::path& dir) {
  saelab::SaeMeta meta;
  meta.model_name = "gpt2";
  meta.hook_name = "blocks.1.hook_resid_pre";
  meta.hook_layer = 1;
  meta.context_size = 32;
  saelab::SaeDirectory sae;
  sae.cfg = saelab::make_sae_cfg("standard", kDIn, kDSae, meta);
  at::manual_seed(0);
  sae.weights = {{"W_enc", at::randn({kDIn, kDSae}) * 0.2},
                 {"b_enc", at::zeros({kDSae})},
                 {"W_dec", at::randn({kDSae, kDIn}) * 0.2},
                 {"b_dec", at::zeros({kDIn})}};
  const fs::path out = dir / "sae";
  saelab::save_sae_directory(out, sae, true);
  return out;
}

void set_up() {
  const fs::path dir = saelab::fuzz::setup_dir();
  auto& s = server();
  const fs::path cfg = write_experiment(dir);
  s.inspection = saelab::open_inspection(write_sae(dir), cfg);
  saelab::LatentReference ref;
  ref.rows = 1;
  ref.max = at::ones({kDSae});
  saelab::ExplorerLimits limits;  // small, so that one input stays well under a second
  limits.max_text_tokens = 32;
  limits.max_new_tokens = 1;
  limits.max_features = 4;
  s.explorer = std::make_unique<saelab::Explorer>(s.inspection, std::move(ref), dir / "report", limits);
}

bool documented(unsigned status) {
  return status == 200 || status == 400 || status == 404 || status == 405 || status == 413 || status == 422 ||
         status == 431;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  saelab::fuzz::quiet_process();
  try {
    set_up();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz target 'serve': set-up failed (run scripts/fetch-data.sh for data/): %s\n",
                 e.what());
    std::abort();
  }
  return 0;
}

SAELAB_FUZZ_TARGET("serve") {
  auto& s = server();
  const auto parsed = saelab::parse_http_request({reinterpret_cast<const char*>(data), size}, s.limits);
  saelab::HttpResponse r = parsed.error;
  if (parsed.request) {
    try {
      r = s.explorer->handle(*parsed.request);
    } catch (const saelab::Error& e) {
      saelab::fuzz::report_finding("serve", "the explorer threw (the client would get 500)", e.what());
    }
  }
  if (!documented(r.status))
    saelab::fuzz::report_finding("serve", saelab::cat("undocumented status ", r.status).c_str(),
                                 r.body.c_str());
}
