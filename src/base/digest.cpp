#include "base/digest.h"

#include <openssl/evp.h>

#include "base/error.h"

namespace builder::base {

static bool is_hex64(std::string_view h) {
  if (h.size() != 64) return false;
  for (char c : h)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool Digest::valid(std::string_view s) {
  return s.size() == 71 && s.substr(0, 7) == "sha256:" && is_hex64(s.substr(7));
}

Digest Digest::parse(std::string_view s) {
  if (!valid(s)) throw Error("invalid digest `" + std::string(s) + "` (want sha256:<64 hex>)");
  Digest d;
  d.str_ = std::string(s);
  return d;
}

Digest Digest::from_hex(std::string_view hex) { return parse("sha256:" + std::string(hex)); }

Digest Digest::of(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr) != 1)
    throw Error("sha256: cannot initialise OpenSSL digest");
}

Sha256::~Sha256() {
  if (impl_ && impl_->ctx) EVP_MD_CTX_free(impl_->ctx);
}
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&& o) noexcept {
  if (this != &o) {
    if (impl_ && impl_->ctx) EVP_MD_CTX_free(impl_->ctx);
    impl_ = std::move(o.impl_);
  }
  return *this;
}

void Sha256::update(const void* data, size_t n) { EVP_DigestUpdate(impl_->ctx, data, n); }

Digest Sha256::finish() {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, md, &len);
  static const char* hexd = "0123456789abcdef";
  std::string hex;
  hex.reserve(64);
  for (unsigned i = 0; i < len; ++i) {
    hex.push_back(hexd[md[i] >> 4]);
    hex.push_back(hexd[md[i] & 15]);
  }
  return Digest::from_hex(hex);
}

std::string sha256_hex(std::string_view data) { return std::string(Digest::of(data).hex()); }

}  // namespace builder::base
