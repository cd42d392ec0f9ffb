#pragma once
// Progress for long work. On a terminal: one redrawn line with a bar, rate and ETA. Otherwise
// (CI, pipes, nohup): a plain line every `plain_interval_s` seconds. Every plain line is also
// written to the run's log file.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "saelab/core/export.hpp"

namespace saelab {

class SAELAB_API Progress {
 public:
  // total <= 0: unknown length (no bar or ETA, just counts and rate).
  Progress(std::string label, std::int64_t total, std::string unit, double plain_interval_s = 10.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // `done` is absolute; `fields` are shown after the rate (e.g. {"loss", 0.12}).
  void update(std::int64_t done, const std::map<std::string, double>& fields = {});
  void finish();

  // Formats used by the renderer; public for tests.
  static std::string format_duration(double seconds);
  static std::string format_count(double v);
  std::string render(bool bar, int width) const;

 private:
  using Clock = std::chrono::steady_clock;
  std::string label_, unit_;
  std::int64_t total_, done_ = 0, start_done_ = -1;
  std::map<std::string, double> fields_;
  Clock::time_point start_, last_draw_, last_plain_;
  double plain_interval_s_;
  bool tty_, finished_ = false;
};

}  // namespace saelab
