#include <gtest/gtest.h>

#include "saelab/core/progress.hpp"

namespace saelab {
namespace {

TEST(Progress, FormatsDurationsAndCounts) {
  EXPECT_EQ(Progress::format_duration(0), "00:00");
  EXPECT_EQ(Progress::format_duration(75), "01:15");
  EXPECT_EQ(Progress::format_duration(3725), "1:02:05");
  EXPECT_EQ(Progress::format_duration(-1), "--:--");
  EXPECT_EQ(Progress::format_count(12), "12");
  EXPECT_EQ(Progress::format_count(12345), "12.3k");
  EXPECT_EQ(Progress::format_count(2.5e6), "2.50M");
  EXPECT_EQ(Progress::format_count(0.1234), "0.1234");
}

TEST(Progress, RenderShowsBarPercentRateAndFields) {
  Progress p("train", 1000, "tok", 1e9);
  p.update(0);
  p.update(250, {{"loss", 0.5}});
  std::string bar = p.render(true, 120);
  EXPECT_NE(bar.find("train ["), std::string::npos) << bar;
  EXPECT_NE(bar.find(" 25.0% 250/1000 tok"), std::string::npos) << bar;
  EXPECT_NE(bar.find("ETA"), std::string::npos) << bar;
  EXPECT_NE(bar.find("loss 0.5"), std::string::npos) << bar;
  std::string plain = p.render(false, 0);
  EXPECT_EQ(plain.find('['), std::string::npos) << plain;
  p.finish();
}

}  // namespace
}  // namespace saelab
