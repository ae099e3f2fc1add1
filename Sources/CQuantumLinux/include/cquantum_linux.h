int quantum_linux_placeholder(void);
