// libFuzzer's driver, for quantum-fuzz. SwiftPM gives an executable's entry point its own
// name (quantum_fuzz_main), so the fuzz build cannot use libFuzzer's main; quantum-fuzz
// calls the driver from its entry point instead. Only the -sanitize=fuzzer build links it.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
