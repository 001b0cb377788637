// FUZZ_CHECK: a property a fuzz target asserts about the code under test. A failure prints the
// condition and aborts, which libFuzzer (and the corpus replay) reports as a crash.
#ifndef INFERD_FUZZ_FUZZ_CHECK_H_
#define INFERD_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                 \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)

#endif  // INFERD_FUZZ_FUZZ_CHECK_H_
