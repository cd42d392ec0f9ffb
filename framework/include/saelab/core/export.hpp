#pragma once
// Symbols are hidden by default (CMAKE_CXX_VISIBILITY_PRESET hidden). Everything the host and the
// plugins share is marked here, or typeinfo, dynamic_cast and catch would fail across libraries.
#include <boost/config.hpp>

#define SAELAB_API BOOST_SYMBOL_VISIBLE
