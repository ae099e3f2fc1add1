int quantum_crypto_placeholder(void) { return 0; }
