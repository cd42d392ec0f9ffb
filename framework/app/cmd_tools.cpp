#include "cli_util.hpp"
#include "saelab/error.hpp"

namespace saelab::cli {
int cmd_store(const Args&) { throw Error("store info is not available in this build yet"); }
int cmd_tokenize(const Args&) { throw Error("tokenize is not available in this build yet"); }
int cmd_fetch_model(const Args&) { throw Error("fetch-model is not available in this build yet"); }
}  // namespace saelab::cli
