#include "saelab/core/progress.hpp"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <sys/ioctl.h>
#include <unistd.h>

#include "saelab/core/log.hpp"

namespace saelab {

Progress::Progress(std::string label, std::int64_t total, std::string unit, double plain_interval_s)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(Clock::now()),
      last_draw_(start_),
      last_plain_(start_),
      plain_interval_s_(plain_interval_s),
      tty_(::isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() {
  if (!finished_) finish();
}

std::string Progress::format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  long t = std::lround(s);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%02ld:%02ld", t / 60, t % 60);
  return buf;
}

std::string Progress::format_count(double v) {
  char buf[32];
  double a = std::fabs(v);
  if (a >= 1e9)
    std::snprintf(buf, sizeof buf, "%.2fG", v / 1e9);
  else if (a >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (a >= 1e4)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else if (a >= 100 || v == std::floor(v))
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (a >= 0.01 || a == 0)
    std::snprintf(buf, sizeof buf, "%.4g", v);
  else
    std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

std::string Progress::render(bool bar, int width) const {
  double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  double counted = double(done_ - std::max<std::int64_t>(start_done_, 0));
  double rate = elapsed > 0 ? counted / elapsed : 0.0;
  std::ostringstream os;
  os << label_ << " ";
  if (total_ > 0) {
    double frac = std::min(1.0, double(done_) / double(total_));
    if (bar) {
      int cells = std::max(10, std::min(30, width / 4));
      int full = static_cast<int>(frac * cells);
      os << "[" << std::string(full, '#') << std::string(cells - full, '.') << "] ";
    }
    char pct[16];
    std::snprintf(pct, sizeof pct, "%5.1f%%", 100 * frac);
    os << pct << " " << format_count(double(done_)) << "/" << format_count(double(total_)) << " " << unit_;
    double eta = rate > 0 ? double(total_ - done_) / rate : NAN;
    os << " | " << format_count(rate) << " " << unit_ << "/s | " << format_duration(elapsed)
       << " elapsed, ETA " << format_duration(eta);
  } else {
    os << format_count(double(done_)) << " " << unit_ << " | " << format_count(rate) << " " << unit_
       << "/s | " << format_duration(elapsed);
  }
  for (const auto& [k, v] : fields_) os << " | " << k << " " << format_count(v);
  return os.str();
}

void Progress::update(std::int64_t done, const std::map<std::string, double>& fields) {
  if (start_done_ < 0) start_done_ = done_ == 0 ? 0 : done_;
  done_ = done;
  for (const auto& [k, v] : fields) fields_[k] = v;
  auto now = Clock::now();
  if (tty_ && now - last_draw_ > std::chrono::milliseconds(200)) {
    winsize ws{};
    int width = (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) ? ws.ws_col : 100;
    std::string line = render(true, width);
    if (static_cast<int>(line.size()) > width - 1) line.resize(static_cast<std::size_t>(width - 1));
    std::cerr << "\r\033[K" << line << std::flush;
    last_draw_ = now;
  }
  if (std::chrono::duration<double>(now - last_plain_).count() >= plain_interval_s_) {
    if (tty_)
      log::file_only(render(false, 0));
    else
      log::info(render(false, 0));
    last_plain_ = now;
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (tty_) std::cerr << "\r\033[K";
  log::info(render(false, 0));
}

}  // namespace saelab
