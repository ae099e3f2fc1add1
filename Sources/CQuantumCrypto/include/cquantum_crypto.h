int quantum_crypto_placeholder(void);
