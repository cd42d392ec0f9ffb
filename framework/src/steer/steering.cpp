#include "saelab/steer/steering.hpp"

#include <iomanip>
#include <sstream>

#include "saelab/core/error.hpp"
#include "saelab/core/numbers.hpp"
#include "saelab/steer/direction_file.hpp"

namespace saelab {
namespace {

constexpr const char* kForms =
    "write LATENT:+A or LATENT:-A (add A times its decoder direction; Ax: A times its largest reference "
    "activation), LATENT:clamp=V (or Vx), or LATENT:ablate, e.g. 123:+8, 123:+2x, 77:clamp=0, 77:ablate";

// A finite number, optionally followed by 'x'; false when `s` is anything else.
bool parse_amount(const std::string& s, double& value, bool& times_max) {
  std::string num = s;
  times_max = !num.empty() && num.back() == 'x';
  if (times_max) num.pop_back();
  const auto v = parse_finite_number(num);
  if (v) value = *v;
  return v.has_value();
}

}  // namespace

FeatureSteer parse_feature_steer(const std::string& spec) {
  const auto colon = spec.find(':');
  SAELAB_CHECK(colon != std::string::npos && colon > 0, UsageError, "steering spec '", spec, "': ", kForms);
  FeatureSteer s;
  const std::string id = spec.substr(0, colon), what = spec.substr(colon + 1);
  const auto latent = parse_integer(id);
  SAELAB_CHECK(latent && *latent >= 0, UsageError, "steering spec '", spec, "': '", id,
               "' is not a latent index; ", kForms);
  s.latent = *latent;
  if (what == "ablate") {
    s.kind = FeatureSteer::Kind::Clamp;
    return s;
  }
  bool ok = false;
  if (what.rfind("clamp=", 0) == 0) {
    s.kind = FeatureSteer::Kind::Clamp;
    ok = parse_amount(what.substr(6), s.value, s.times_max);
  } else if (!what.empty() && (what[0] == '+' || what[0] == '-')) {
    ok = parse_amount(what, s.value, s.times_max);
  }
  SAELAB_CHECK(ok, UsageError, "steering spec '", spec, "': '", what, "' is not an amount; ", kForms);
  return s;
}

DirectionSteer parse_direction_steer(const std::string& spec) {
  const auto colon = spec.rfind(':');
  DirectionSteer d;
  bool times_max = false;
  SAELAB_CHECK(colon != std::string::npos && colon > 0 &&
                   parse_amount(spec.substr(colon + 1), d.alpha, times_max) && !times_max,
               UsageError, "direction spec '", spec,
               "': write FILE:ALPHA or FILE#TENSOR:ALPHA (a .npy or .safetensors file and a number), e.g. "
               "honesty.npy:4");
  d.file = spec.substr(0, colon);
  return d;
}

std::string describe(const FeatureSteer& s) {
  std::ostringstream os;
  os << s.latent << ':';
  if (s.kind == FeatureSteer::Kind::Clamp && s.value == 0.0 && !s.times_max) return os.str() + "ablate";
  if (s.kind == FeatureSteer::Kind::Clamp)
    os << "clamp=";
  else
    os << (s.value >= 0 ? "+" : "");
  os << s.value << (s.times_max ? "x" : "");
  return os.str();
}

std::vector<HookEdit> steering_edits(const SteerTarget& t, const std::vector<FeatureSteer>& features,
                                     const std::vector<DirectionSteer>& directions, EditPositions where) {
  SAELAB_CHECK(t.sae, Error, "steering needs an SAE");
  const auto d_sae = t.sae->shape().d_sae;
  std::vector<HookEdit> edits;
  std::vector<LatentSetting> settings;
  for (const FeatureSteer& s : features) {
    SAELAB_CHECK(s.latent < d_sae, UsageError, "steering spec '", describe(s), "': latent ", s.latent,
                 " does not exist; the SAE has latents 0 to ", d_sae - 1);
    SAELAB_CHECK(
        !s.times_max || t.reference, UsageError, "steering spec '", describe(s),
        "' is relative to the latent's largest activation, but no reference statistics were computed");
    const double value = s.times_max ? s.value * t.reference->max_of(s.latent) : s.value;
    if (s.kind == FeatureSteer::Kind::Clamp) {
      settings.push_back({s.latent, value});
    } else {
      torch::NoGradGuard no_grad;
      const auto row = t.sae->decoder_weight().detach()[s.latent].to(torch::kCPU, torch::kFloat32).clone();
      edits.push_back(add_direction_edit(t.hook, row, value, where));
    }
  }
  // Settings read the unsteered activation, so they go first.
  if (!settings.empty()) edits.insert(edits.begin(), set_latents_edit(t.hook, t.sae, settings, where));
  for (const DirectionSteer& d : directions)
    edits.push_back(add_direction_edit(t.hook, load_direction(d.file, t.d_in), d.alpha, where));
  return edits;
}

}  // namespace saelab
