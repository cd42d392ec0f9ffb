#include "saelab/serve/explorer.hpp"

#include <chrono>

#include "saelab/core/embedded_file.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/token_display.hpp"
#include "saelab/features/heatmap.hpp"
#include "saelab/steer/steering.hpp"

namespace saelab {
extern const EmbeddedFile kExplorerAssets[];
extern const std::size_t kExplorerAssets_count;

namespace fs = std::filesystem;

namespace {

// A request the client got wrong: becomes an HTTP error with this status and message.
struct BadRequest : Error {
  BadRequest(unsigned s, const std::string& m) : Error(m), status(s) {}
  unsigned status;
};

const nlohmann::json& field(const nlohmann::json& body, const char* key) {
  static const nlohmann::json null_value;
  auto it = body.find(key);
  return it == body.end() ? null_value : *it;
}

std::string string_field(const nlohmann::json& body, const char* key) {
  const auto& v = field(body, key);
  if (!v.is_string()) throw BadRequest(400, cat("field '", key, "' must be a string"));
  return v.get<std::string>();
}

// An integer field in [lo, hi], or `fallback` when absent. 422 when out of range.
std::int64_t int_field(const nlohmann::json& body, const char* key, std::int64_t lo, std::int64_t hi,
                       std::int64_t fallback) {
  const auto& v = field(body, key);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer()) throw BadRequest(400, cat("field '", key, "' must be an integer"));
  const auto x = v.get<std::int64_t>();
  if (x < lo || x > hi) throw BadRequest(422, cat("field '", key, "' is ", x, "; allowed: ", lo, " to ", hi));
  return x;
}

// A latent index: 400 when missing or not an integer, 422 when the SAE has no such latent.
std::int64_t latent_field(const nlohmann::json& body, std::int64_t d_sae) {
  const auto& v = field(body, "latent");
  if (!v.is_number_integer()) throw BadRequest(400, "field 'latent' must be an integer latent index");
  const auto x = v.get<std::int64_t>();
  if (x < 0 || x >= d_sae)
    throw BadRequest(422, cat("latent ", x, " does not exist; the SAE has latents 0 to ", d_sae - 1));
  return x;
}

double number_field(const nlohmann::json& body, const char* key, double lo, double hi, double fallback) {
  const auto& v = field(body, key);
  if (v.is_null()) return fallback;
  if (!v.is_number()) throw BadRequest(400, cat("field '", key, "' must be a number"));
  const auto x = v.get<double>();
  if (!(x >= lo && x <= hi))
    throw BadRequest(422, cat("field '", key, "' is ", x, "; allowed: ", lo, " to ", hi));
  return x;
}

std::string mime_type(const fs::path& p) {
  const std::string e = p.extension().string();
  if (e == ".html") return "text/html; charset=utf-8";
  if (e == ".js") return "text/javascript; charset=utf-8";
  if (e == ".css") return "text/css; charset=utf-8";
  if (e == ".json") return "application/json";
  if (e == ".svg") return "image/svg+xml";
  if (e == ".png") return "image/png";
  return "application/octet-stream";
}

HttpResponse ok_json(const nlohmann::json& j) {
  HttpResponse r;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

nlohmann::json pieces(const std::string& bytes) {
  auto out = nlohmann::json::array();
  for (const auto& p : token_display(bytes)) out.push_back({p.marker, p.text});
  return out;
}

}  // namespace

Explorer::Explorer(Inspection& in, LatentReference reference, fs::path report_dir, ExplorerLimits limits)
    : in_(in),
      ref_(std::move(reference)),
      report_dir_(std::move(report_dir)),
      limits_(limits),
      info_(info_body()) {}

HttpHeaders Explorer::security_headers() {
  return {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"Referrer-Policy", "no-referrer"}};
}

bool Explorer::heavy(const HttpRequest& req) const {
  return req.method == "POST" && req.path.rfind("/api/", 0) == 0;
}

HttpResponse Explorer::handle(const HttpRequest& req) {
  try {
    // HTTP also allows "*" and absolute-URI targets; the explorer serves only origin paths.
    if (req.path.empty() || req.path[0] != '/')
      throw BadRequest(400, cat("the request target '", req.path, "' is not a path starting with '/'"));
    if (req.path.rfind("/api/", 0) == 0) {
      if (req.path == "/api/info") {
        if (req.method != "GET") throw BadRequest(405, "GET /api/info");
        HttpResponse r;
        r.body = info_;
        return r;
      }
      if (req.path != "/api/activations" && req.path != "/api/steer")
        throw BadRequest(404,
                         cat("no API '", req.path, "'; there are /api/info, /api/activations, /api/steer"));
      if (req.method != "POST") throw BadRequest(405, cat(req.path, " takes POST with a JSON body"));
      const auto body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
      if (body.is_discarded() || !body.is_object())
        throw BadRequest(400, "the request body is not a JSON object");
      std::lock_guard<std::mutex> lock(model_);
      return req.path == "/api/steer" ? steer(body) : activations(body);
    }
    if (req.method != "GET" && req.method != "HEAD") throw BadRequest(405, "only GET is served here");
    if (req.path.rfind("/report/", 0) == 0) return report_file(req.path.substr(8));
    if (req.path == "/favicon.ico") {  // browsers ask on every page; there is none
      HttpResponse none;
      none.status = 204;
      return none;
    }
    const std::string name = req.path == "/" ? "explorer.html" : req.path.substr(1);
    for (std::size_t i = 0; i < kExplorerAssets_count; ++i)
      if (name == kExplorerAssets[i].name) {
        HttpResponse r;
        r.content_type = mime_type(name);
        r.body.assign(reinterpret_cast<const char*>(kExplorerAssets[i].data), kExplorerAssets[i].size);
        return r;
      }
    throw BadRequest(404, cat("nothing at '", req.path, "'"));
  } catch (const BadRequest& e) {
    return json_error(e.status, e.what());
  } catch (const UsageError& e) {  // a spec the steering code refused
    return json_error(422, e.what());
  }
}

std::string Explorer::info_body() const {
  const auto max = ref_.max.contiguous();
  const float* m = max.data_ptr<float>();
  return ok_json({{"model", in_.source->info().model_id},
                  {"hook", in_.hook},
                  {"d_sae", in_.sae.sae->shape().d_sae},
                  {"report", fs::exists(report_dir_ / "feature.html")},
                  {"reference", ref_.description},
                  {"max", std::vector<float>(m, m + max.numel())},
                  {"limits",
                   {{"max_text_bytes", limits_.max_text_bytes},
                    {"max_text_tokens", limits_.max_text_tokens},
                    {"max_new_tokens", limits_.max_new_tokens},
                    {"max_features", limits_.max_features}}}})
      .body;
}

std::vector<std::int32_t> Explorer::checked_tokens(const std::string& text, const char* key) const {
  if (text.empty()) throw BadRequest(422, cat("field '", key, "' is empty"));
  if (text.size() > limits_.max_text_bytes)
    throw BadRequest(
        413, cat("field '", key, "' has ", text.size(), " bytes; the limit is ", limits_.max_text_bytes));
  auto ids = in_.source->tokenize(text);
  if (static_cast<std::int64_t>(ids.size()) > limits_.max_text_tokens)
    throw BadRequest(
        413, cat("field '", key, "' is ", ids.size(), " tokens; the limit is ", limits_.max_text_tokens));
  return ids;
}

HttpResponse Explorer::activations(const nlohmann::json& body) {
  const std::string text = string_field(body, "text");
  checked_tokens(text, "text");
  const auto d_sae = in_.sae.sae->shape().d_sae;
  const auto top = int_field(body, "top", 1, limits_.max_top, 5);
  std::int64_t latent = -1;
  if (!field(body, "latent").is_null()) latent = latent_field(body, d_sae);
  torch::NoGradGuard no_grad;
  const TextLatents t = latents_on_text(*in_.source, *in_.sae.sae, in_.hook, text, 1.0, in_.prepend_bos,
                                        in_.rows.first_position);
  const auto peaks = top_latents(t, 10);
  if (latent < 0) latent = peaks.empty() ? 0 : peaks[0].id;
  const auto per = top_latents_per_token(t, top);
  const auto column = t.latents.select(1, latent).contiguous();
  auto tokens = nlohmann::json::array();
  for (std::size_t i = 0; i < t.tokens.size(); ++i) {
    auto lat = nlohmann::json::array();
    for (const auto& p : per[i]) lat.push_back({p.id, p.peak});
    tokens.push_back({{"pieces", pieces(t.bytes[i])},
                      {"evaluated", static_cast<bool>(t.evaluated[i])},
                      {"value", column[static_cast<std::int64_t>(i)].item<float>()},
                      {"top", lat}});
  }
  auto pk = nlohmann::json::array();
  for (const auto& p : peaks) pk.push_back({p.id, p.peak, p.position});
  return ok_json({{"tokens", tokens},
                  {"latent", latent},
                  {"peak", column.max().item<float>()},
                  {"max", ref_.max_of(latent)},
                  {"peaks", pk}});
}

HttpResponse Explorer::steer(const nlohmann::json& body) {
  const std::string prompt_text = string_field(body, "prompt");
  auto prompt = checked_tokens(prompt_text, "prompt");
  const auto& feats = field(body, "features");
  if (!feats.is_array()) throw BadRequest(400, "field 'features' must be an array");
  if (feats.size() > limits_.max_features)
    throw BadRequest(422, cat(feats.size(), " features; the limit is ", limits_.max_features));
  const auto d_sae = in_.sae.sae->shape().d_sae;
  std::vector<FeatureSteer> specs;
  for (const auto& f : feats) {
    if (!f.is_object())
      throw BadRequest(400, "each of 'features' must be an object {latent, mode, value, unit}");
    FeatureSteer s;
    s.latent = latent_field(f, d_sae);
    const std::string mode = f.contains("mode") ? string_field(f, "mode") : "add";
    if (mode != "add" && mode != "clamp" && mode != "ablate")
      throw BadRequest(422, cat("mode '", mode, "' is not one of: add, clamp, ablate"));
    s.kind = mode == "add" ? FeatureSteer::Kind::Add : FeatureSteer::Kind::Clamp;
    s.value = mode == "ablate" ? 0.0 : number_field(f, "value", -1e4, 1e4, 0.0);
    const std::string unit = f.contains("unit") ? string_field(f, "unit") : "max";
    if (unit != "max" && unit != "abs")
      throw BadRequest(422, cat("unit '", unit, "' is not one of: max, abs"));
    s.times_max = unit == "max" && mode != "ablate";
    specs.push_back(s);
  }
  const std::string positions = body.contains("positions") ? string_field(body, "positions") : "all";
  if (positions != "all" && positions != "generated")
    throw BadRequest(422, cat("positions '", positions, "' is not one of: all, generated"));
  GenerateOptions o;
  o.max_new_tokens = int_field(body, "max_new_tokens", 1, limits_.max_new_tokens,
                               std::min<std::int64_t>(24, limits_.max_new_tokens));
  o.temperature = number_field(body, "temperature", 0.0, 5.0, 0.0);
  o.top_p = number_field(body, "top_p", 1e-6, 1.0, 1.0);
  o.seed = static_cast<std::uint64_t>(int_field(body, "seed", 0, std::int64_t(1) << 53, 0));
  o.stop_token = in_.source->info().eos_token;
  if (in_.prepend_bos && in_.source->info().bos_token >= 0)
    prompt.insert(prompt.begin(), in_.source->info().bos_token);
  const auto t0 = std::chrono::steady_clock::now();
  const auto plain = in_.source->generate(prompt, o);
  const SteerTarget target{in_.sae.sae, in_.hook, in_.sae.sae->shape().d_in, &ref_};
  o.edits =
      steering_edits(target, specs, {}, positions == "all" ? EditPositions::All : EditPositions::Generated);
  const auto steered = in_.source->generate(prompt, o);
  auto described = nlohmann::json::array();
  for (const auto& s : specs) described.push_back(describe(s));
  return ok_json({{"default", in_.source->decode(plain)},
                  {"steered", in_.source->decode(steered)},
                  {"features", described},
                  {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}});
}

HttpResponse Explorer::report_file(const std::string& rel) const {
  // Only plain relative names inside the report: letters, digits, '_', '-', '.', '/', no "..".
  bool safe = !rel.empty() && rel.find("..") == std::string::npos && rel[0] != '/';
  for (char c : rel)
    safe =
        safe && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == '/');
  if (!safe) throw BadRequest(404, "no such report file");
  // Resolved, so that a symlink in the report directory cannot serve a file from elsewhere.
  const auto p = path_inside(report_dir_, rel);
  std::error_code ec;
  if (!p || !fs::is_regular_file(*p, ec))
    throw BadRequest(
        404, fs::exists(report_dir_)
                 ? cat("the report has no '", rel, "'")
                 : std::string("this run has no report; write it with saelab report FILE, then restart"));
  HttpResponse r;
  r.content_type = mime_type(*p);
  r.body = read_file(*p, std::uintmax_t(256) << 20, "report file");
  return r;
}

}  // namespace saelab
