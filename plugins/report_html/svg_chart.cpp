#include "svg_chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "html_text.hpp"
#include "saelab/core/error.hpp"

namespace saelab::report {
namespace {

std::string f1(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// Round numbers for axis ticks: 1, 2 or 5 times a power of ten.
double nice_step(double span, int ticks) {
  if (!(span > 0)) return 1;
  const double raw = span / ticks;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

}  // namespace

std::string svg_histogram(const HistogramChart& c) {
  SAELAB_CHECK(c.edges.size() == c.counts.size() + 1 && !c.counts.empty(), Error,
               "svg_histogram: ", c.edges.size(), " edges for ", c.counts.size(), " bins");
  const double ml = 46, mr = 10, mt = 10, mb = 34;
  const double pw = c.width - ml - mr, ph = c.height - mt - mb;
  const double x0 = c.edges.front(), x1 = c.edges.back();
  const double xspan = x1 > x0 ? x1 - x0 : 1;
  const double ymax = std::max(1.0, *std::max_element(c.counts.begin(), c.counts.end()));
  auto X = [&](double v) { return ml + (v - x0) / xspan * pw; };
  auto Y = [&](double v) { return mt + ph - v / ymax * ph; };

  std::string s =
      cat("<svg class=\"chart\" viewBox=\"0 0 ", c.width, " ", c.height, "\" width=\"", c.width,
          "\" height=\"", c.height, "\" role=\"img\" aria-label=\"", html::escape(c.aria_label), "\">");
  // Horizontal grid and y labels.
  const double ystep = nice_step(ymax, 3);
  for (double v = 0; v <= ymax + 1e-9; v += ystep) {
    s += cat("<line class=\"grid\" x1=\"", f1(ml), "\" x2=\"", f1(ml + pw), "\" y1=\"", f1(Y(v)), "\" y2=\"",
             f1(Y(v)), "\"/><text class=\"tick\" x=\"", f1(ml - 5), "\" y=\"", f1(Y(v) + 3.5),
             "\" text-anchor=\"end\">", html::escape(html::num(v, 4)), "</text>");
  }
  for (std::size_t i = 0; i < c.counts.size(); ++i) {
    if (c.counts[i] <= 0) continue;
    const double bx = X(c.edges[i]), bw = std::max(0.8, X(c.edges[i + 1]) - bx - 0.6);
    const std::string& colour = c.colours.empty()       ? std::string("#4f7cac")
                                : c.colours.size() == 1 ? c.colours[0]
                                                        : c.colours[i];
    s += cat("<rect x=\"", f1(bx), "\" y=\"", f1(Y(c.counts[i])), "\" width=\"", f1(bw), "\" height=\"",
             f1(mt + ph - Y(c.counts[i])), "\" fill=\"", colour, "\"><title>",
             html::escape(html::num(c.edges[i], 4)), " \u2013 ", html::escape(html::num(c.edges[i + 1], 4)),
             ": ", html::escape(html::num(c.counts[i], 8)), "</title></rect>");
  }
  // X axis with round ticks.
  s += cat("<line class=\"axis\" x1=\"", f1(ml), "\" x2=\"", f1(ml + pw), "\" y1=\"", f1(mt + ph), "\" y2=\"",
           f1(mt + ph), "\"/>");
  const double xstep = nice_step(xspan, 5);
  for (double v = std::ceil(x0 / xstep) * xstep; v <= x1 + 1e-9 * xspan; v += xstep) {
    const double vv = std::fabs(v) < 1e-12 * xspan ? 0.0 : v;
    s += cat("<line class=\"axis\" x1=\"", f1(X(vv)), "\" x2=\"", f1(X(vv)), "\" y1=\"", f1(mt + ph),
             "\" y2=\"", f1(mt + ph + 4), "\"/><text class=\"tick\" x=\"", f1(X(vv)), "\" y=\"",
             f1(mt + ph + 15), "\" text-anchor=\"middle\">", html::escape(html::num(vv, 3)), "</text>");
  }
  s += cat("<text class=\"label\" x=\"", f1(ml + pw / 2), "\" y=\"", f1(c.height - 3.0),
           "\" text-anchor=\"middle\">", html::escape(c.x_label), "</text>");
  s += cat("<text class=\"label\" transform=\"rotate(-90)\" x=\"", f1(-(mt + ph / 2)),
           "\" y=\"11\" text-anchor=\"middle\">", html::escape(c.y_label), "</text>");
  s += "</svg>";
  return s;
}

}  // namespace saelab::report
