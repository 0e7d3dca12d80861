// FUZZ_CHECK(cond): a fuzz target's invariant. When it does not hold, prints the condition and
// its place and aborts, which libFuzzer reports as a crash with the input that caused it (and
// the replay runner as a failed test).
#ifndef TIERMESH_TESTS_FUZZ_FUZZ_CHECK_H_
#define TIERMESH_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

#endif  // TIERMESH_TESTS_FUZZ_FUZZ_CHECK_H_
