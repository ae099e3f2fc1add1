#include "cquantum_thread.h"

#include <errno.h>
#include <string.h>
#include <sys/prctl.h>

int qt_name_current_thread(const char *name) {
    if (strnlen(name, 16) > 15) return -EINVAL;
    return prctl(PR_SET_NAME, name, 0, 0, 0) == 0 ? 0 : -errno;
}
