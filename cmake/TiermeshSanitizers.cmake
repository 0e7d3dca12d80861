# Applies TIERMESH_SANITIZE (e.g. "address,undefined" or "thread") to every
# target, project and test code alike, so that the asan/tsan presets cover all.
if(TIERMESH_SANITIZE)
  add_compile_options(-fsanitize=${TIERMESH_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${TIERMESH_SANITIZE})
endif()
