#pragma once
// Shared Boost.ProgramOptions plumbing for the verbs.
#include <iostream>
#include <string>

#include <boost/program_options.hpp>

#include "commands.hpp"

namespace saelab::cli {

namespace po = boost::program_options;

// Parses `args` against `desc` (+ positional), prints help and returns false on --help.
inline bool parse_args(const Args& args, po::options_description& desc,
                       const po::positional_options_description& pos, po::variables_map& vm,
                       const std::string& usage) {
  desc.add_options()("help,h", "show this help");
  po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: saelab " << usage << "\n\n" << desc << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

// parse_args for the verbs whose one positional argument is the run or SAE directory ("target").
inline bool parse_target_args(const Args& args, po::options_description& desc, po::variables_map& vm,
                              const std::string& usage) {
  po::positional_options_description pos;
  pos.add("target", 1);
  return parse_args(args, desc, pos, vm, usage);
}

}  // namespace saelab::cli
