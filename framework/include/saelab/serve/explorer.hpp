#pragma once
// The explorer behind saelab serve: its page, the run's report, and a JSON API over one SAE and
// its model. Every request body is untrusted: JSON is parsed without exceptions, each field is
// checked for type and range, and what is wrong comes back as {"error": "..."} with 400 (not
// JSON, or a field of the wrong type), 404 (no such path), 405 (wrong method), 413 (text over the
// limit) or 422 (a value out of range, such as a latent the SAE does not have).
//
//   GET  /                      the page (explorer.html, .js, .css, embedded)
//   GET  /report/<file>         the run's report (saelab report), for the feature dashboards
//   GET  /api/info              {model, hook, d_sae, report, max: [d_sae], limits}
//   POST /api/activations       {text, latent?, top?} -> {tokens: [{pieces, evaluated, value, top}],
//                               latent, peak, peaks: [[latent, peak, pos]]}; `latent` defaults to
//                               the one with the highest peak
//   POST /api/steer             {prompt, features: [{latent, mode: add|clamp|ablate, value,
//                               unit: max|abs}], max_new_tokens?, temperature?, top_p?, seed?,
//                               positions?: all|generated} -> {default, steered, seconds}
#include <cstdint>
#include <filesystem>
#include <mutex>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/serve/http_server.hpp"
#include "saelab/stages/inspect.hpp"
#include "saelab/steer/reference.hpp"

namespace saelab {

struct SAELAB_API ExplorerLimits {
  std::size_t max_text_bytes = 8 * 1024;
  std::int64_t max_text_tokens = 512;
  std::int64_t max_new_tokens = 64;
  std::size_t max_features = 16;
  std::int64_t max_top = 20;
};

class SAELAB_API Explorer {
 public:
  // `reference` gives each latent's max (the sliders' unit); `report_dir` may not exist.
  Explorer(Inspection& in, LatentReference reference, std::filesystem::path report_dir,
           ExplorerLimits limits);

  bool heavy(const HttpRequest& req) const;  // the POSTs that run the model
  HttpResponse handle(const HttpRequest& req);
  // The CSP and the other headers every response carries.
  static HttpHeaders security_headers();

 private:
  std::string info_body() const;  // GET /api/info, made once: nothing in it changes
  HttpResponse activations(const nlohmann::json& body);
  HttpResponse steer(const nlohmann::json& body);
  HttpResponse report_file(const std::string& rel) const;
  std::vector<std::int32_t> checked_tokens(const std::string& text, const char* field) const;

  Inspection& in_;
  LatentReference ref_;
  std::filesystem::path report_dir_;
  ExplorerLimits limits_;
  std::string info_;
  std::mutex model_;  // one model call at a time (the server's worker already serialises them)
};

}  // namespace saelab
