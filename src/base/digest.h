// base/digest.h — content digests ("sha256:<hex>") and a streaming SHA-256 hasher.
// Owns parsing/validation of digest strings; knows nothing of where blobs live.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace builder::base {

/// A validated "sha256:<64 lowercase hex>" digest. Only sha256 is accepted.
class Digest {
 public:
  Digest() = default;
  /// Throws Error when `s` is not a valid sha256 digest.
  static Digest parse(std::string_view s);
  static bool valid(std::string_view s);
  static Digest from_hex(std::string_view hex);
  /// Digest of `data`.
  static Digest of(std::string_view data);

  const std::string& str() const { return str_; }
  std::string_view hex() const { return std::string_view(str_).substr(7); }
  std::string_view algorithm() const { return std::string_view(str_).substr(0, 6); }
  bool empty() const { return str_.empty(); }
  auto operator<=>(const Digest&) const = default;

 private:
  std::string str_;
};

/// Streaming SHA-256. Not thread-safe; move-only.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  /// Finishes the hash; the hasher must not be used afterwards.
  Digest finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string sha256_hex(std::string_view data);

}  // namespace builder::base
