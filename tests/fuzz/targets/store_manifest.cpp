// The activation store's manifest.json, read as the store plugin reads it before it opens shards.
#include "../fuzz_support.hpp"
#include "store_format.hpp"

SAELAB_FUZZ_TARGET("store_manifest") {
  const auto dir = saelab::fuzz::fresh_dir() / "store";
  std::filesystem::create_directories(dir);
  saelab::fuzz::write_file(dir / saelab::hdf5_store::kManifestName,
                           {reinterpret_cast<const char*>(data), size});
  const auto m = saelab::hdf5_store::read_manifest(dir);
  (void)m.rows();
  (void)m.sequences();
  (void)saelab::hdf5_store::manifest_to_json(m).dump();
}
