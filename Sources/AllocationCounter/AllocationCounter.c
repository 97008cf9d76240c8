// Interposes the glibc allocator for benchmarks: symbols defined in the executable take precedence
// over libc's for every shared library that calls them (the Swift runtime included).
#include "AllocationCounter.h"
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile int counting = 0;
static uint64_t bytes = 0;
static uint64_t calls = 0;

static inline void note(size_t size) {
    if (counting) {
        __atomic_fetch_add(&bytes, size, __ATOMIC_RELAXED);
        __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
    }
}

void allocation_counter_start(void) { bytes = 0; calls = 0; counting = 1; }
void allocation_counter_stop(void) { counting = 0; }
uint64_t allocation_counter_bytes(void) { return bytes; }
uint64_t allocation_counter_calls(void) { return calls; }

void *malloc(size_t size) { note(size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { note(n * size); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { note(size); return __libc_realloc(p, size); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t alignment, size_t size) { note(size); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { note(size); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    note(size);
    void *p = __libc_memalign(alignment, size);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
