#ifndef ALLOCATION_COUNTER_H
#define ALLOCATION_COUNTER_H
#include <stdint.h>

/// Counts heap allocations made by this process between start and stop, by interposing
/// malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign (glibc).
void allocation_counter_start(void);
void allocation_counter_stop(void);
uint64_t allocation_counter_bytes(void);
uint64_t allocation_counter_calls(void);

#endif
