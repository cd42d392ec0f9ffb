#pragma once
// The saelab command-line verbs. Each returns the process exit code: 0 ok, 2 usage or
// configuration error (thrown as UsageError/ConfigError), 1 runtime failure (any other Error).
#include <string>
#include <vector>

namespace saelab::cli {

using Args = std::vector<std::string>;  // the arguments after the verb

int cmd_run(const std::string& verb, const Args& args);  // run, harvest, train, eval, report
int cmd_validate(const Args& args);
int cmd_sweep(const Args& args);
int cmd_compare(const Args& args);
int cmd_plugins(const Args& args);
int cmd_doctor(const Args& args);
int cmd_config_docs(const Args& args);
int cmd_store(const Args& args);
int cmd_tokenize(const Args& args);
int cmd_fetch_model(const Args& args);
int cmd_heatmap(const Args& args);   // an SAE's latents on a text, coloured
int cmd_features(const Args& args);  // per token, its most active latents
int cmd_steer(const Args& args);     // default and steered completions side by side
int cmd_monitor(const Args& args);   // watched latents over a stream of documents (exit 3: fired)
int cmd_serve(const Args& args);     // the local explorer in the browser

}  // namespace saelab::cli
