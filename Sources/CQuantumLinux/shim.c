int quantum_linux_placeholder(void) { return 0; }
