// See include/CAllocationCounter.h.
#define _GNU_SOURCE
#include "CAllocationCounter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>

// glibc's allocator under its internal names (exported by libc.so.6).
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);
extern void *__libc_valloc(size_t size);
extern void *__libc_pvalloc(size_t size);

// Linux thread names are at most 15 bytes plus the terminating zero.
enum { thread_name_size = 16 };

static atomic_bool counting;
static atomic_uint_fast64_t counted;
static char watched_prefix[thread_name_size];
static size_t watched_prefix_length;

void allocation_counter_start(const char *prefix) {
    atomic_store(&counting, false);
    watched_prefix_length = strnlen(prefix, thread_name_size - 1);
    memcpy(watched_prefix, prefix, watched_prefix_length);
    atomic_store(&counted, 0);
    atomic_store(&counting, true);
}

uint64_t allocation_counter_stop(void) {
    atomic_store(&counting, false);
    return atomic_load(&counted);
}

// Called for each counted allocation: a place for a debugger's breakpoint, to see where
// an allocation on a watched thread comes from (`break allocation_counter_counted`).
__attribute__((noinline)) void allocation_counter_counted(void) {
    __asm__ volatile("");
}

// Called on every allocation: one relaxed load when not counting.
static inline void note_allocation(void) {
    if (!atomic_load_explicit(&counting, memory_order_acquire)) return;
    char name[thread_name_size] = {0};
    int saved = errno;
    if (prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strncmp(name, watched_prefix, watched_prefix_length) == 0) {
        atomic_fetch_add_explicit(&counted, 1, memory_order_relaxed);
        allocation_counter_counted();
    }
    errno = saved;
}

void *malloc(size_t size) {
    note_allocation();
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
    note_allocation();
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    note_allocation();
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    note_allocation();
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    note_allocation();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    note_allocation();
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL && size != 0) return ENOMEM;
    *result = pointer;
    return 0;
}

void *valloc(size_t size) {
    note_allocation();
    return __libc_valloc(size);
}

void *pvalloc(size_t size) {
    note_allocation();
    return __libc_pvalloc(size);
}
