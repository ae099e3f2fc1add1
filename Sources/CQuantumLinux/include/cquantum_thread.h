// Naming the calling thread for the kernel (what `ps -T`, `top -H` and /proc/<pid>/task/*/comm
// show): Swift does not import glibc's pthread_setname_np, and prctl is variadic.
#ifndef CQUANTUM_THREAD_H
#define CQUANTUM_THREAD_H

/// Names the calling thread `name` (at most 15 bytes); 0 on success, -errno on failure
/// (-EINVAL for a longer name, which is refused rather than cut).
int qt_name_current_thread(const char *name);

#endif
