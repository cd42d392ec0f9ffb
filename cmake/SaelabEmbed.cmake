# saelab_embed_files(<target> <symbol> FILES f1 f2 ...)
#
# Compiles files into <target> as bytes, so a plugin carries what it writes out (the HTML report's
# pages, scripts and stylesheet) and needs nothing beside its .so at run time. Generates
# <symbol>.cpp defining
#   namespace saelab { extern const EmbeddedFile <symbol>[]; extern const std::size_t <symbol>_count; }
# (saelab/core/embedded_file.hpp). Regenerated when any file changes.
set(_saelab_embed_script "${CMAKE_CURRENT_LIST_DIR}/SaelabEmbedGenerate.cmake")

function(saelab_embed_files target symbol)
  cmake_parse_arguments(ARG "" "" "FILES" ${ARGN})
  set(out "${CMAKE_CURRENT_BINARY_DIR}/${symbol}.cpp")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol} "-DFILES=${ARG_FILES}" -P "${_saelab_embed_script}"
    DEPENDS ${ARG_FILES} "${_saelab_embed_script}"
    COMMENT "Embedding ${symbol}"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
