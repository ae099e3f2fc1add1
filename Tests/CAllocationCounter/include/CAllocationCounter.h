// Counts heap allocations made by chosen threads, for the data path's zero-allocation test.
//
// Linked into the test binary only: it defines malloc, calloc, realloc, posix_memalign,
// aligned_alloc, memalign, valloc and pvalloc, which take precedence over glibc's for the
// whole process (Swift's runtime allocates through malloc), and forwards every call to
// glibc's __libc_* functions. While counting is on, each allocation made by a thread whose
// name (prctl PR_GET_NAME) starts with the watched prefix adds one to the count. The hook
// itself allocates nothing and takes no lock.
#ifndef C_ALLOCATION_COUNTER_H
#define C_ALLOCATION_COUNTER_H

#include <stdint.h>

/// Starts counting allocations by threads whose name starts with `prefix` (at most 15
/// bytes, as Linux thread names), from zero.
void allocation_counter_start(const char *prefix);

/// Called for each counted allocation (a breakpoint for a debugger; does nothing).
void allocation_counter_counted(void);

/// Stops counting; returns the allocations counted since `allocation_counter_start`.
uint64_t allocation_counter_stop(void);

#endif
