// safetensors: the header, the tensor table and the data section of one file.
#include "../fuzz_support.hpp"
#include "saelab/formats/safetensors.hpp"

SAELAB_FUZZ_TARGET("safetensors") {
  const auto file = saelab::fuzz::fresh_dir() / "input.safetensors";
  saelab::fuzz::write_file(file, {reinterpret_cast<const char*>(data), size});
  saelab::fuzz::expect_clear_error("safetensors", [&] { (void)saelab::safetensors::load_header(file); });
  const auto loaded = saelab::safetensors::load(file);
  for (const auto& [name, t] : loaded.tensors) (void)t.sum();  // every byte claimed is readable
}
