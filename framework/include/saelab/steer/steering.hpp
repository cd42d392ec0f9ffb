#pragma once
// Steering specs, as saelab steer's --feature/--direction and saelab serve's sliders give them,
// and the hook edits they become.
//
//   F:+A  F:-A          add ±A · W_dec[F]               A in the latent's activation units
//   F:+Ax F:-Ax         add ±A · max_F · W_dec[F]       max_F: F's largest reference activation
//   F:clamp=V           set latent F to V through the SAE (error term kept)
//   F:clamp=Vx          set it to V · max_F
//   F:ablate            set it to 0
//   FILE:A  FILE#NAME:A add A · the direction in FILE (.npy, or a safetensors tensor)
// Latent settings are applied first and together (one encode of the unsteered activation), then
// the additions in the order given.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "saelab/core/export.hpp"
#include "saelab/interfaces/activation_source.hpp"
#include "saelab/interfaces/sae.hpp"
#include "saelab/steer/interventions.hpp"
#include "saelab/steer/reference.hpp"

namespace saelab {

struct SAELAB_API FeatureSteer {
  enum class Kind { Add, Clamp };
  Kind kind = Kind::Add;
  std::int64_t latent = 0;
  double value = 0.0;      // A (signed) or V
  bool times_max = false;  // value is a multiple of the latent's max reference activation
};

struct SAELAB_API DirectionSteer {
  std::string file;  // "path" or "path#tensor"
  double alpha = 0.0;
};

// Throws UsageError quoting the spec and the accepted forms.
SAELAB_API FeatureSteer parse_feature_steer(const std::string& spec);
SAELAB_API DirectionSteer parse_direction_steer(const std::string& spec);
// "123:+8", "77:clamp=0.5x", "12:ablate": the canonical spelling, for output.
SAELAB_API std::string describe(const FeatureSteer& s);

// What the edits act on: an SAE at its hook.
struct SAELAB_API SteerTarget {
  std::shared_ptr<SaeArchitecture> sae;
  std::string hook;
  std::int64_t d_in = 0;
  const LatentReference* reference = nullptr;  // needed only by "x" (times max) values
};

// The hook edits for these specs, in the order above. UsageError for a latent outside the SAE,
// an "x" value without reference statistics, or a direction of the wrong width.
SAELAB_API std::vector<HookEdit> steering_edits(const SteerTarget& target,
                                                const std::vector<FeatureSteer>& features,
                                                const std::vector<DirectionSteer>& directions,
                                                EditPositions where);

}  // namespace saelab
