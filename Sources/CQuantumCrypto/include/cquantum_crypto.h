// CQuantumCrypto: the few OpenSSL calls QuantumCrypto cannot make cleanly from Swift.
// AES-256-GCM in place with a key schedule done once per context, and HMAC-SHA256
// without heap allocation.
#ifndef CQUANTUM_CRYPTO_H
#define CQUANTUM_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/// An OpenSSL EVP cipher context keyed for AES-256-GCM. Opaque to Swift.
typedef struct quantum_aesgcm quantum_aesgcm;

/// Allocates a context and runs the AES-256 key schedule for the 32-byte `key`.
/// Returns NULL if OpenSSL fails. The caller keeps ownership of `key`.
quantum_aesgcm *quantum_aesgcm_new(const uint8_t *key);

/// Frees the context; OpenSSL cleanses the key schedule. NULL is ignored.
void quantum_aesgcm_free(quantum_aesgcm *ctx);

/// Encrypts `length` bytes at `data` in place under the 12-byte `nonce`,
/// authenticating `ad_length` bytes at `ad`, and writes the 16-byte tag to `tag`.
/// Returns 1 on success, 0 on failure.
int quantum_aesgcm_seal(quantum_aesgcm *ctx, const uint8_t *nonce,
                        const uint8_t *ad, size_t ad_length,
                        uint8_t *data, size_t length, uint8_t *tag);

/// Decrypts `length` bytes at `data` in place and verifies the 16-byte `tag`.
/// Returns 1 if the tag is valid, 0 otherwise (the data is then garbage).
int quantum_aesgcm_open(quantum_aesgcm *ctx, const uint8_t *nonce,
                        const uint8_t *ad, size_t ad_length,
                        uint8_t *data, size_t length, const uint8_t *tag);

/// Writes the 32-byte HMAC-SHA256 of `length` bytes at `data` under the `key_length`-byte
/// `key` to `mac`. Allocates nothing (the hash states live on the stack) and cleanses them.
/// Returns 1 on success, 0 on failure.
int quantum_hmac_sha256(const uint8_t *key, size_t key_length,
                        const uint8_t *data, size_t length, uint8_t *mac);

#endif
