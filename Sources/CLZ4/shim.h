// Debian's liblz4 (package liblz4-dev): the LZ4 block format, for the compression plugin.
#include <lz4.h>
