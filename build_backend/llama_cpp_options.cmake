# Read by llama.cpp's CMake project before it declares its options (the build backend passes this
# file as CMAKE_PROJECT_INCLUDE_BEFORE). llama-cpp-sys-2 asks for llama.cpp's `common` library
# because its default features are on, but nothing in this package links it: skipping it saves
# about a fifth of the compile time of a source install (docs/performance.md).
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama.cpp's common helpers (unused here)" FORCE)
