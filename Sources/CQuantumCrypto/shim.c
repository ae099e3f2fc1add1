// Thin wrappers around OpenSSL's EVP interface for AES-256-GCM in place.
// The key is scheduled once in quantum_aesgcm_new; seal/open only set the IV,
// so the per-packet cost is the cipher itself and nothing is allocated.
// HMAC-SHA256 with its state on the stack, for the workers' cookie and mac2 checks.
// The low-level SHA-256 calls (HMAC below) are deprecated in OpenSSL 3; say we know.
#define OPENSSL_SUPPRESS_DEPRECATED
#include "cquantum_crypto.h"

#include <limits.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

enum {
    QUANTUM_AESGCM_NONCE_SIZE = 12,
    QUANTUM_AESGCM_TAG_SIZE = 16,
};

static EVP_CIPHER_CTX *evp(quantum_aesgcm *ctx) { return (EVP_CIPHER_CTX *)ctx; }

quantum_aesgcm *quantum_aesgcm_new(const uint8_t *key) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return NULL;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, QUANTUM_AESGCM_NONCE_SIZE, NULL) != 1
        || EVP_EncryptInit_ex(ctx, NULL, NULL, key, NULL) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return (quantum_aesgcm *)ctx;
}

void quantum_aesgcm_free(quantum_aesgcm *ctx) {
    EVP_CIPHER_CTX_free(evp(ctx));
}

// Sets the nonce and direction (enc 1 = seal, 0 = open) and feeds the additional data.
static int start(EVP_CIPHER_CTX *ctx, int enc, const uint8_t *nonce,
                 const uint8_t *ad, size_t ad_length, size_t length) {
    int written = 0;
    if (ad_length > INT_MAX || length > INT_MAX) return 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, enc) != 1) return 0;
    if (ad_length > 0 && EVP_CipherUpdate(ctx, NULL, &written, ad, (int)ad_length) != 1) return 0;
    return 1;
}

int quantum_aesgcm_seal(quantum_aesgcm *ctx, const uint8_t *nonce,
                        const uint8_t *ad, size_t ad_length,
                        uint8_t *data, size_t length, uint8_t *tag) {
    EVP_CIPHER_CTX *c = evp(ctx);
    unsigned char final_block[16];
    int written = 0;
    if (!start(c, 1, nonce, ad, ad_length, length)) return 0;
    if (length > 0 && EVP_CipherUpdate(c, data, &written, data, (int)length) != 1) return 0;
    if (EVP_CipherFinal_ex(c, final_block, &written) != 1) return 0;
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, QUANTUM_AESGCM_TAG_SIZE, tag) == 1;
}

int quantum_aesgcm_open(quantum_aesgcm *ctx, const uint8_t *nonce,
                        const uint8_t *ad, size_t ad_length,
                        uint8_t *data, size_t length, const uint8_t *tag) {
    EVP_CIPHER_CTX *c = evp(ctx);
    unsigned char final_block[16];
    int written = 0;
    if (!start(c, 0, nonce, ad, ad_length, length)) return 0;
    if (length > 0 && EVP_CipherUpdate(c, data, &written, data, (int)length) != 1) return 0;
    // OpenSSL's prototype takes a non-const pointer but only reads the expected tag.
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, QUANTUM_AESGCM_TAG_SIZE, (void *)tag) != 1) return 0;
    return EVP_CipherFinal_ex(c, final_block, &written) == 1;
}

// HMAC-SHA256 (RFC 2104) over OpenSSL's SHA-256 with every state on the stack: the
// EVP/HMAC interfaces of OpenSSL 3 allocate a context per call, which the workers'
// handshake checks (cookies, mac2) must not do. The low-level SHA-256 calls are
// deprecated in OpenSSL 3 but remain the only allocation-free way to hash.
int quantum_hmac_sha256(const uint8_t *key, size_t key_length,
                        const uint8_t *data, size_t length, uint8_t *mac) {
    enum { BLOCK = SHA256_CBLOCK, DIGEST = SHA256_DIGEST_LENGTH };
    unsigned char block[BLOCK] = {0}, pad[BLOCK], inner[DIGEST];
    SHA256_CTX ctx;
    int ok = 1;
    if (key_length > BLOCK) {
        ok &= SHA256_Init(&ctx) & SHA256_Update(&ctx, key, key_length) & SHA256_Final(block, &ctx);
    } else if (key_length > 0) {
        memcpy(block, key, key_length);
    }
    for (int i = 0; i < BLOCK; i++) pad[i] = block[i] ^ 0x36;
    ok &= SHA256_Init(&ctx) & SHA256_Update(&ctx, pad, BLOCK) & SHA256_Update(&ctx, data, length)
        & SHA256_Final(inner, &ctx);
    for (int i = 0; i < BLOCK; i++) pad[i] = block[i] ^ 0x5c;
    ok &= SHA256_Init(&ctx) & SHA256_Update(&ctx, pad, BLOCK) & SHA256_Update(&ctx, inner, DIGEST)
        & SHA256_Final(mac, &ctx);
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(&ctx, sizeof ctx);
    return ok;
}
