// Registers the "hdf5" activation store.
#include "hdf5_store.hpp"
#include "saelab/core/plugin_api.hpp"

namespace {

saelab::OptionSchema hdf5_store_schema() {
  saelab::OptionSchema s;
  s.choice("dtype", "float16", {"float32", "float16", "bfloat16"},
           "on-disk dtype of activations (bfloat16 is stored as uint16 bits, see store_format.hpp)");
  s.integer("shard_rows", 65536,
            "rows per shard file, ending at the next sequence boundary; a shard is built in memory "
            "(about 2 x rows x d x dtype bytes while it is written)")
      .at_least(1);
  s.integer("chunk_rows", 1024, "rows per HDF5 chunk: the unit of checksums, reads and shuffling")
      .at_least(1);
  s.choice("compression", "none", {"none", "gzip"}, "chunk compression (gzip adds byte shuffle)");
  s.integer("compression_level", 4, "gzip level").at_least(1).at_most(9);
  return s;
}

void register_plugin(saelab::Registrar& r) {
  r.add<saelab::ActivationStore>(
      "hdf5", "Sharded HDF5 activation store with crash-safe commits and a shuffling reader",
      hdf5_store_schema(), [](const saelab::Options& o, const saelab::PluginContext&) {
        saelab::hdf5_store::Hdf5StoreConfig cfg;
        cfg.dtype = saelab::row_dtype_from_string(o.string("dtype"), o.key_path("dtype"));
        cfg.layout.shard_rows = o.integer("shard_rows");
        cfg.layout.chunk_rows = o.integer("chunk_rows");
        cfg.layout.compression = o.string("compression");
        cfg.layout.compression_level = o.integer("compression_level");
        return std::make_unique<saelab::hdf5_store::Hdf5Store>(std::move(cfg));
      });
}

}  // namespace

SAELAB_PLUGIN("hdf5_store", "1.0.0", "HDF5 activation store", register_plugin)
