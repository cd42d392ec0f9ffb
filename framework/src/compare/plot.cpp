// Labelled scatter plots and histograms as SVG, and SVG to PNG through librsvg and cairo.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>

#include <cairo.h>
#include <librsvg/rsvg.h>

#include "saelab/compare/compare.hpp"
#include "saelab/core/error.hpp"
#include "saelab/core/markup.hpp"

namespace saelab {
namespace fs = std::filesystem;

namespace {

constexpr double kWidth = 720, kHeight = 460;
constexpr double kLeft = 80, kRight = 30, kTop = 50, kBottom = 60;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string tick_text(double v, double step) {
  char buf[32];
  const int decimals = std::max(0, int(std::ceil(-std::log10(step) - 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v);
  return buf;
}

struct Axis {
  double lo, hi, step;
};

// A range padded by 5% with round ticks, about five of them.
Axis nice_axis(double lo, double hi) {
  if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
    const double pad = std::max(std::abs(hi) * 0.1, 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double pad = (hi - lo) * 0.05;
  const bool nonnegative = lo >= 0;  // counts such as L0: no negative ticks
  lo -= pad;
  hi += pad;
  const double raw = (hi - lo) / 5, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
  const double first = std::floor(lo / step) * step;
  return {nonnegative ? std::max(0.0, first) : first, std::ceil(hi / step) * step, step};
}

std::string axis_ticks(const Axis& a, bool horizontal, const std::function<double(double)>& to_px) {
  std::string s;
  for (double v = a.lo; v <= a.hi + a.step * 1e-6; v += a.step) {
    const double p = to_px(v);
    if (horizontal) {
      s += "<line x1=\"" + num(p) + "\" y1=\"" + num(kHeight - kBottom) + "\" x2=\"" + num(p) + "\" y2=\"" +
           num(kTop) + "\" stroke=\"#e4e4e4\"/>";
      s += "<text x=\"" + num(p) + "\" y=\"" + num(kHeight - kBottom + 18) + "\" text-anchor=\"middle\">" +
           tick_text(v, a.step) + "</text>\n";
    } else {
      s += "<line x1=\"" + num(kLeft) + "\" y1=\"" + num(p) + "\" x2=\"" + num(kWidth - kRight) + "\" y2=\"" +
           num(p) + "\" stroke=\"#e4e4e4\"/>";
      s += "<text x=\"" + num(kLeft - 8) + "\" y=\"" + num(p + 4) + "\" text-anchor=\"end\">" +
           tick_text(v, a.step) + "</text>\n";
    }
  }
  return s;
}

std::string svg_open(const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" + num(kHeight) +
         "\" viewBox=\"0 0 " + num(kWidth) + " " + num(kHeight) +
         "\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
         "fill=\"#ffffff\"/>\n<title>" +
         markup_escape(title) + "</title>\n";
}

// The title above the frame and the axis labels.
std::string titles(const std::string& title, const std::string& x_label, const std::string& y_label) {
  return "<text x=\"" + num(kWidth / 2) + "\" y=\"28\" text-anchor=\"middle\" font-size=\"15\">" +
         markup_escape(title) + "</text>\n<text x=\"" + num((kLeft + kWidth - kRight) / 2) + "\" y=\"" +
         num(kHeight - 18) + "\" text-anchor=\"middle\">" + markup_escape(x_label) +
         "</text>\n<text transform=\"translate(20," + num((kTop + kHeight - kBottom) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + markup_escape(y_label) + "</text>\n";
}

}  // namespace

std::string scatter_svg(const ScatterPlot& plot) {
  SAELAB_CHECK(!plot.points.empty(), Error, "scatter plot '", plot.title, "' has no points");
  auto pts = plot.points;
  std::sort(pts.begin(), pts.end(), [](const ScatterPoint& a, const ScatterPoint& b) { return a.x < b.x; });
  double x0 = pts.front().x, x1 = pts.back().x, y0 = pts.front().y, y1 = y0;
  for (const auto& p : pts) y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  const Axis ax = nice_axis(x0, x1), ay = nice_axis(y0, y1);
  const auto px = [&](double v) { return kLeft + (v - ax.lo) / (ax.hi - ax.lo) * (kWidth - kLeft - kRight); };
  const auto py = [&](double v) {
    return kHeight - kBottom - (v - ay.lo) / (ay.hi - ay.lo) * (kHeight - kTop - kBottom);
  };
  std::string s = svg_open(plot.title);
  s += axis_ticks(ax, true, px) + axis_ticks(ay, false, py);
  s += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(kWidth - kLeft - kRight) +
       "\" height=\"" + num(kHeight - kTop - kBottom) + "\" fill=\"none\" stroke=\"#555\"/>\n";
  if (plot.connect && pts.size() > 1) {
    s += "<polyline fill=\"none\" stroke=\"#3b6fb6\" stroke-width=\"1.5\" points=\"";
    for (const auto& p : pts) s += num(px(p.x)) + "," + num(py(p.y)) + " ";
    s += "\"/>\n";
  }
  double last_x = -1e9, last_y = -1e9;  // where the previous label went
  for (const auto& p : plot.markers ? pts : std::vector<ScatterPoint>{}) {
    s += "<circle cx=\"" + num(px(p.x)) + "\" cy=\"" + num(py(p.y)) +
         "\" r=\"4.5\" fill=\"#d9512c\"><title>" + markup_escape(p.label) + "</title></circle>";
    // Labels go left of points in the right third, so they stay inside the frame, and below the
    // point when the previous label sits where this one would.
    const bool left = px(p.x) > kWidth * 0.66;
    double y = py(p.y) - 7;
    if (std::abs(px(p.x) - last_x) < 90 && std::abs(y - last_y) < 14) y = py(p.y) + 17;
    last_x = px(p.x), last_y = y;
    s += "<text x=\"" + num(px(p.x) + (left ? -8 : 8)) + "\" y=\"" + num(y) + "\" text-anchor=\"" +
         (left ? "end" : "start") + "\" font-size=\"11\">" + markup_escape(p.label) + "</text>\n";
  }
  return s + titles(plot.title, plot.x_label, plot.y_label) + "</svg>\n";
}

std::string histogram_svg(const HistogramPlot& plot) {
  SAELAB_CHECK(!plot.counts.empty() && plot.edges.size() == plot.counts.size() + 1, Error, "histogram '",
               plot.title, "': ", plot.edges.size(), " edges for ", plot.counts.size(), " bins");
  const double top = std::max(1.0, *std::max_element(plot.counts.begin(), plot.counts.end()));
  const Axis ax = nice_axis(plot.edges.front(), plot.edges.back()), ay = nice_axis(0, top);
  const auto px = [&](double v) { return kLeft + (v - ax.lo) / (ax.hi - ax.lo) * (kWidth - kLeft - kRight); };
  const auto py = [&](double v) {
    return kHeight - kBottom - (v - ay.lo) / (ay.hi - ay.lo) * (kHeight - kTop - kBottom);
  };
  std::string s = svg_open(plot.title);
  s += axis_ticks(ax, true, px) + axis_ticks(ay, false, py);
  char range[96];
  for (std::size_t i = 0; i < plot.counts.size(); ++i) {
    if (!(plot.counts[i] > 0)) continue;
    const double x0 = px(plot.edges[i]), x1 = px(plot.edges[i + 1]);
    std::snprintf(range, sizeof range, "%.4g to %.4g: %.10g", plot.edges[i], plot.edges[i + 1],
                  plot.counts[i]);
    s += "<rect x=\"" + num(x0) + "\" y=\"" + num(py(plot.counts[i])) + "\" width=\"" +
         num(std::max(0.8, x1 - x0 - 0.5)) + "\" height=\"" + num(py(0) - py(plot.counts[i])) +
         "\" fill=\"#3b6fb6\"><title>" + range + "</title></rect>\n";
  }
  s += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(kWidth - kLeft - kRight) +
       "\" height=\"" + num(kHeight - kTop - kBottom) + "\" fill=\"none\" stroke=\"#555\"/>\n";
  return s + titles(plot.title, plot.x_label, plot.y_label) + "</svg>\n";
}

void write_svg_as_png(const std::string& svg, const fs::path& png) {
  GError* err = nullptr;
  RsvgHandle* handle =
      rsvg_handle_new_from_data(reinterpret_cast<const guint8*>(svg.data()), svg.size(), &err);
  if (!handle) {
    const std::string why = err ? err->message : "unknown error";
    if (err) g_error_free(err);
    throw Error(cat("cannot parse the SVG for '", png.string(), "': ", why));
  }
  gdouble w = kWidth, h = kHeight;
  rsvg_handle_get_intrinsic_size_in_pixels(handle, &w, &h);
  cairo_surface_t* surface =
      cairo_image_surface_create(CAIRO_FORMAT_ARGB32, int(std::ceil(w)), int(std::ceil(h)));
  cairo_t* cr = cairo_create(surface);
  const RsvgRectangle viewport{0, 0, w, h};
  const bool ok = rsvg_handle_render_document(handle, cr, &viewport, &err);
  std::string why = ok ? "" : (err ? err->message : "unknown error");
  if (err) g_error_free(err);
  const fs::path tmp = fs::path(png.string() + ".tmp");
  cairo_status_t status = CAIRO_STATUS_SUCCESS;
  if (ok) status = cairo_surface_write_to_png(surface, tmp.c_str());
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  g_object_unref(handle);
  if (!ok) throw Error(cat("cannot render the SVG for '", png.string(), "': ", why));
  if (status != CAIRO_STATUS_SUCCESS) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw Error(cat("cannot write '", png.string(), "': ", cairo_status_to_string(status)));
  }
  fs::rename(tmp, png);
}

}  // namespace saelab
