#include <iostream>
#include "saelab/plugin_host.hpp"
int main() { std::cout << saelab::plugin_registry().all().size() << "\n"; }
