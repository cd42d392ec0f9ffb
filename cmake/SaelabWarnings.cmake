# Warnings and sanitizers are applied per target, never through global flags.
add_library(saelab_warnings INTERFACE)
add_library(saelab::warnings ALIAS saelab_warnings)
target_compile_options(saelab_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wno-unused-parameter
  $<$<BOOL:${SAELAB_WERROR}>:-Werror>)

add_library(saelab_sanitizers INTERFACE)
add_library(saelab::sanitizers ALIAS saelab_sanitizers)
if(SAELAB_SANITIZE)
  target_compile_options(saelab_sanitizers INTERFACE
    -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(saelab_sanitizers INTERFACE -fsanitize=address,undefined)
endif()

# Every first-party target calls this once.
function(saelab_target_defaults target)
  target_link_libraries(${target} PRIVATE saelab_warnings saelab_sanitizers)
endfunction()
