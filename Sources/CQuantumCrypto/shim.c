// Thin wrappers around OpenSSL's EVP interface for AES-256-GCM in place.
// The key is scheduled once in quantum_aesgcm_new; seal/open only set the IV,
// so the per-packet cost is the cipher itself and nothing is allocated.
#include "cquantum_crypto.h"

#include <limits.h>
#include <openssl/evp.h>

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
