// Registry references: parsing delegates to image::full_ref, so a name means the same
// thing to the image store (tags) and to the registry client (URLs).
#include "registry/reference.h"

#include "base/error.h"
#include "image/store.h"

namespace builder::registry {

Reference Reference::parse(std::string_view s) {
  // full_ref validates with Docker's grammar and normalises ("busybox" ->
  // "docker.io/library/busybox:latest"); the split below cannot fail on its output.
  std::string full;
  try {
    full = image::full_ref(std::string(s));
  } catch (const base::Error& e) {
    throw base::Error(e.message());
  }
  Reference r;
  if (auto at = full.find('@'); at != std::string::npos) {
    r.digest = full.substr(at + 1);
    full.resize(at);
  }
  auto slash = full.find('/');
  r.domain = full.substr(0, slash);
  std::string rest = full.substr(slash + 1);
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    r.tag = rest.substr(colon + 1);
    rest.resize(colon);
  }
  r.path = std::move(rest);
  return r;
}

std::string Reference::repository() const { return domain + "/" + path; }

std::string Reference::str() const {
  std::string s = repository();
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::manifest_ref() const { return digest.empty() ? tag : digest; }

Reference Reference::with_digest(const std::string& d) const {
  Reference r = *this;
  r.tag.clear();
  r.digest = d;
  return r;
}

std::string registry_host(const std::string& domain) {
  return domain == "docker.io" ? "registry-1.docker.io" : domain;
}

bool is_loopback(std::string_view host) {
  // Strip ":port" (and brackets around an IPv6 literal).
  if (!host.empty() && host.front() == '[') {
    auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    host = host.substr(1, close - 1);
  } else if (auto colon = host.find(':'); colon != std::string_view::npos && host.find(':', colon + 1) == std::string_view::npos) {
    host = host.substr(0, colon);  // one colon: host:port (several: a bare IPv6 address)
  }
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8: four decimal octets, the first 127.
  if (host.rfind("127.", 0) != 0) return false;
  int parts = 0;
  size_t i = 0;
  while (i <= host.size()) {
    size_t j = host.find('.', i);
    if (j == std::string_view::npos) j = host.size();
    auto part = host.substr(i, j - i);
    if (part.empty() || part.size() > 3) return false;
    int v = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    if (v > 255) return false;
    ++parts;
    i = j + 1;
  }
  return parts == 4;
}

}  // namespace builder::registry
