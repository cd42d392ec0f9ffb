#include "test_util.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>

#include <sys/wait.h>

namespace saelab::test {
namespace fs = std::filesystem;

std::string craft(const std::string& header, const std::string& data, std::optional<std::uint64_t> length) {
  std::uint64_t n = length ? *length : header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

torch::Tensor pattern(torch::Dtype dtype, std::vector<std::int64_t> shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  torch::Tensor base = (torch::arange(n, torch::kInt64) * 37) % 101;
  torch::Tensor signed_base = base - 50;
  torch::Tensor v;
  switch (dtype) {
    case torch::kFloat64:
      v = signed_base.to(torch::kFloat64) / 3.0;
      break;
    case torch::kFloat32:
    case torch::kFloat16:
    case torch::kBFloat16:
      v = (signed_base.to(torch::kFloat32) * 0.25).to(dtype);
      break;
    case torch::kInt64:
      v = signed_base * (std::int64_t{1} << 40);
      break;
    case torch::kInt32:
      v = (signed_base * (1 << 20)).to(torch::kInt32);
      break;
    case torch::kInt16:
      v = (signed_base * 300).to(torch::kInt16);
      break;
    case torch::kInt8:
      v = signed_base.to(torch::kInt8);
      break;
    case torch::kUInt8:
      v = (base * 2).to(torch::kUInt8);
      break;
    case torch::kBool:
      v = (base % 3) == 0;
      break;
    default:
      throw std::runtime_error("pattern: unsupported dtype");
  }
  return v.reshape(shape);
}

torch::Tensor special_f32() {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> v = {inf,
                          -inf,
                          std::numeric_limits<float>::quiet_NaN(),
                          -0.0f,
                          std::numeric_limits<float>::denorm_min(),
                          std::numeric_limits<float>::max()};
  return torch::tensor(v, torch::kFloat32);
}

std::optional<std::string> oracle_python_or_fail() {
  const char* py = std::getenv("SAELAB_ORACLE_PYTHON");
  if (!py || !*py) {
    ADD_FAILURE() << "SAELAB_ORACLE_PYTHON is not set. This test checks saelab against the Python "
                     "reference implementation. Create the oracle venv with `scripts/setup.sh "
                     "--oracle` (it pins safetensors==0.4.1, see tests/oracle/requirements.txt) and "
                     "export SAELAB_ORACLE_PYTHON=<repo>/.venv-oracle/bin/python.";
    return std::nullopt;
  }
  if (!fs::exists(py)) {
    ADD_FAILURE() << "SAELAB_ORACLE_PYTHON='" << py << "' does not exist; re-run "
                  << "`scripts/setup.sh --oracle` or point the variable at the oracle venv's python";
    return std::nullopt;
  }
  return std::string(py);
}

CommandResult run_oracle(const std::string& python, const std::string& script,
                         const std::vector<std::string>& args) {
  std::string cmd =
      shell_quote(python) + " " + shell_quote(std::string(SAELAB_SOURCE_DIR) + "/tests/formats/" + script);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  const CommandResult r = run_command(cmd);
  std::cout << "[oracle " << script << "] exit " << r.exit_code << "\n" << r.output;
  return r;
}

bool bitwise_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  if (a.numel() == 0) return true;  // empty tensors may have null data pointers
  torch::Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data_ptr(), cb.data_ptr(), ca.numel() * ca.element_size()) == 0;
}

}  // namespace saelab::test
