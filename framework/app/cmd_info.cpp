#include <fstream>
#include <iomanip>
#include <iostream>

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "cli_util.hpp"
#include "saelab/config/experiment.hpp"
#include "saelab/core/fs_util.hpp"
#include "saelab/core/plugin_host.hpp"
#include "saelab/core/runtime.hpp"
#include "saelab/core/version.hpp"

namespace saelab::cli {

int cmd_plugins(const Args& args) {
  po::options_description desc("options");
  po::variables_map vm;
  if (!parse_args(args, desc, {}, vm, "plugins")) return 0;
  configure_threads(-1);
  const Registry& reg = plugin_registry();
  std::cout << std::left << std::setw(10) << "KIND" << std::setw(18) << "NAME" << std::setw(10) << "VERSION"
            << "FILE\n";
  for (const FactoryInfo* f : reg.all()) {
    std::cout << std::setw(10) << f->kind << std::setw(18) << f->name << std::setw(10) << f->library.version
              << f->library.file.string() << "\n";
  }
  for (const auto& msg : plugin_scan().refused) std::cout << "refused: " << msg << "\n";
  std::cout << "\nsearch path:";
  for (const auto& d : default_plugin_dirs()) std::cout << " " << d.string();
  std::cout << "\n" << blas_summary() << "\n";
  return 0;
}

int cmd_doctor(const Args& args) {
  po::options_description desc("options");
  po::variables_map vm;
  if (!parse_args(args, desc, {}, vm, "doctor")) return 0;
  configure_threads(-1);
  std::cout << "saelab " << kVersion << " (plugin ABI " << kPluginAbiVersion << "), LibTorch "
            << TORCH_VERSION_MAJOR << "." << TORCH_VERSION_MINOR << "." << TORCH_VERSION_PATCH << "\n"
            << "CUDA available: " << (at::hasCUDA() ? "yes" : "no") << "\n"
            << blas_summary() << "\n";
  std::cout << "sgemm 1024^3: " << std::fixed << std::setprecision(1) << measure_sgemm_gflops()
            << " GFLOP/s on " << at::get_num_threads() << " threads\n";
  std::cout << "plugins loaded: " << plugin_registry().all().size()
            << ", refused: " << plugin_scan().refused.size() << "\n";
  return blas_info().slow ? 1 : 0;
}

int cmd_config_docs(const Args& args) {
  po::options_description desc("options");
  std::string out;
  desc.add_options()("out", po::value(&out), "write to this file instead of standard output");
  po::variables_map vm;
  if (!parse_args(args, desc, {}, vm, "config-docs [--out FILE]")) return 0;
  std::string md = config_reference_markdown(plugin_registry());
  if (out.empty())
    std::cout << md;
  else
    write_file_atomic(out, md);
  return 0;
}

}  // namespace saelab::cli
