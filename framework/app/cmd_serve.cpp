// saelab serve: the local explorer in the browser.
#include <iostream>

#include "cli_util.hpp"
#include "reference_args.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/log.hpp"
#include "saelab/serve/explorer.hpp"

namespace saelab::cli {
namespace {

struct ServeArgs {
  std::string target, config, host = "127.0.0.1";
  int port = 8765;
  std::int64_t timeout_ms = 10000, max_body = 64 * 1024, max_queued = 4, max_connections = 128;
  ExplorerLimits limits;
  ReferenceArgs reference;
};

void add_serve_options(po::options_description& desc, ServeArgs& a) {
  desc.add_options()("target", po::value(&a.target)->required(), "run directory or SAE directory")(
      "host", po::value(&a.host), "address to listen on (default 127.0.0.1, this machine only)")(
      "port", po::value(&a.port), "port (default 8765; 0 picks a free one)")(
      "request-timeout-ms", po::value(&a.timeout_ms), "a request must arrive within this (default 10000)")(
      "max-body-bytes", po::value(&a.max_body), "largest request body (default 65536)")(
      "max-text-bytes", po::value(&a.limits.max_text_bytes), "longest text or prompt (default 8192)")(
      "max-text-tokens", po::value(&a.limits.max_text_tokens),
      "most tokens in a text or prompt (default 512)")("max-new-tokens", po::value(&a.limits.max_new_tokens),
                                                       "most tokens generated per request (default 64)")(
      "max-queued", po::value(&a.max_queued), "model requests waiting or running before 503 (default 4)")(
      "max-connections", po::value(&a.max_connections), "open connections before 503 (default 128)")(
      "config", po::value(&a.config),
      "experiment file naming the model (for an SAE directory outside a run)");
  add_reference_options(desc, a.reference, "the sliders' unit (max activations)");
}

HttpLimits http_limits(const ServeArgs& a) {
  SAELAB_CHECK(a.port >= 0 && a.port <= 65535, UsageError, "--port ", a.port, " is not a port (0 to 65535)");
  SAELAB_CHECK(a.timeout_ms >= 100 && a.max_body >= 1024 && a.max_queued >= 1 && a.max_connections >= 1,
               UsageError,
               "limits: --request-timeout-ms >= 100, --max-body-bytes >= 1024, --max-queued and "
               "--max-connections >= 1");
  SAELAB_CHECK(a.limits.max_text_tokens >= 1 && a.limits.max_new_tokens >= 1 && a.limits.max_text_bytes >= 1,
               UsageError, "--max-text-bytes, --max-text-tokens and --max-new-tokens must be positive");
  HttpLimits l;
  l.request_timeout = std::chrono::milliseconds(a.timeout_ms);
  l.max_body_bytes = static_cast<std::size_t>(a.max_body);
  l.max_queued = static_cast<std::size_t>(a.max_queued);
  l.max_connections = static_cast<std::size_t>(a.max_connections);
  return l;
}

}  // namespace

int cmd_serve(const Args& args) {
  po::options_description desc("options");
  ServeArgs a;
  add_serve_options(desc, a);
  po::variables_map vm;
  if (!parse_target_args(args, desc, vm, "serve RUN_OR_SAE [--port 8765] [--host 127.0.0.1]")) return 0;
  const HttpLimits limits = http_limits(a);
  if (a.host != "127.0.0.1" && a.host != "::1" && a.host != "localhost")
    log::warn("serve: listening on ", a.host,
              ", so other machines can reach the explorer and run the model; it has no authentication");
  Inspection in = open_inspection(a.target, a.config);
  LatentReference ref = reference_of(in, a.reference, {});
  if (ref.rows == 0) {
    log::warn(
        "serve: no reference rows (no stored rows and no --reference), so slider units are raw activations");
    ref.max = torch::ones({in.sae.sae->shape().d_sae}, torch::kFloat32);
    ref.description = "none: unit 1";
  }
  const auto report_dir = in.run_dir.empty() ? std::filesystem::path() : in.run_dir / "report";
  if (report_dir.empty() || !std::filesystem::exists(report_dir / "feature.html"))
    log::warn(
        "serve: this run has no report, so latents have no dashboards; write one with saelab report FILE");
  Explorer explorer(in, std::move(ref), report_dir, a.limits);
  HttpServer server(a.host == "localhost" ? "127.0.0.1" : a.host, static_cast<unsigned short>(a.port), limits,
                    {[&](const HttpRequest& r) { return explorer.heavy(r); },
                     [&](const HttpRequest& r) { return explorer.handle(r); }},
                    Explorer::security_headers());
  const std::string shown = a.host.find(':') != std::string::npos ? "[" + a.host + "]" : a.host;
  std::cout << "saelab serve: http://" << shown << ":" << server.port() << "/" << std::endl;
  server.run();
  log::info("serve: stopped");
  return 0;
}

}  // namespace saelab::cli
