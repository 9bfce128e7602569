// --insecure-registry entries and the transport each registry gets. IP networks are
// compared as bytes (inet_pton), so "127.0.0.0/8" holds "127.1.2.3:5000" but never a
// host name that merely starts with those digits.
#include "registry/insecure.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>

#include "base/error.h"
#include "base/strings.h"
#include "registry/reference.h"

namespace builder::registry {

namespace {

struct Ip {
  int family = 0;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};
  int bits() const { return family == AF_INET ? 32 : 128; }
};

std::optional<Ip> parse_ip(const std::string& s) {
  Ip ip;
  if (::inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET;
    return ip;
  }
  if (::inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) == 1) {
    ip.family = AF_INET6;
    return ip;
  }
  return std::nullopt;
}

/// "host:port" / "[v6]:port" / "host" -> the host without brackets or port.
std::string host_part(const std::string& domain) {
  if (!domain.empty() && domain.front() == '[') {
    auto close = domain.find(']');
    return close == std::string::npos ? domain : domain.substr(1, close - 1);
  }
  // A bare IPv6 literal has several colons and no port.
  if (std::count(domain.begin(), domain.end(), ':') > 1) return domain;
  return domain.substr(0, domain.find(':'));
}

struct Network {
  Ip base;
  int prefix = 0;
};

std::optional<Network> parse_cidr(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return std::nullopt;
  auto ip = parse_ip(s.substr(0, slash));
  const std::string bits = s.substr(slash + 1);
  if (!ip || bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  int prefix = std::stoi(bits);
  if (prefix > ip->bits()) return std::nullopt;
  return Network{*ip, prefix};
}

bool contains(const Network& n, const Ip& ip) {
  if (n.base.family != ip.family) return false;
  int full = n.prefix / 8, rest = n.prefix % 8;
  if (std::memcmp(n.base.bytes.data(), ip.bytes.data(), static_cast<size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (n.base.bytes[full] & mask) == (ip.bytes[full] & mask);
}

bool valid_host(const std::string& h) {
  if (h.empty()) return false;
  for (const auto& label : base::split(h, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  return true;
}

bool valid_port(const std::string& p) {
  return !p.empty() && p.size() <= 5 && p.find_first_not_of("0123456789") == std::string::npos &&
         std::stoi(p) > 0 && std::stoi(p) < 65536;
}

}  // namespace

std::string normalize_insecure_entry(std::string_view entry) {
  const std::string s = base::to_lower(std::string(base::trim(entry)));
  auto bad = [&](const std::string& why) {
    return base::Error("--insecure-registry `" + std::string(entry) + "`: " + why);
  };
  if (s.empty()) throw bad("empty value");
  if (s.find("://") != std::string::npos) throw bad("give the registry as host[:port], without a scheme");
  if (s.find('/') != std::string::npos) {
    if (parse_cidr(s)) return s;
    throw bad("not host[:port] or an IP network (CIDR such as 10.0.0.0/8)");
  }
  if (s.front() == '[') {
    auto close = s.find(']');
    if (close == std::string::npos || !parse_ip(s.substr(1, close - 1)) ||
        parse_ip(s.substr(1, close - 1))->family != AF_INET6)
      throw bad("a bracketed host must be an IPv6 address");
    if (close + 1 == s.size()) return s;
    if (s[close + 1] != ':' || !valid_port(s.substr(close + 2))) throw bad("bad port");
    return s;
  }
  if (std::count(s.begin(), s.end(), ':') > 1) {
    if (parse_ip(s)) return s;  // a bare IPv6 address
    throw bad("not host[:port]");
  }
  auto colon = s.find(':');
  std::string host = s.substr(0, colon);
  if (!valid_host(host)) throw bad("not a host name or IP address");
  if (colon != std::string::npos && !valid_port(s.substr(colon + 1))) throw bad("bad port");
  return s;
}

Transport transport_for(const std::string& domain, const std::vector<std::string>& insecure) {
  const std::string d = base::to_lower(domain);
  const std::string host = host_part(d);
  const auto ip = parse_ip(host);
  for (const auto& raw : insecure) {
    std::string e;
    try {
      e = normalize_insecure_entry(raw);
    } catch (const base::Error&) {
      continue;
    }
    if (e == d) return Transport::HttpsThenHttp;
    if (auto net = parse_cidr(e)) {
      if (ip && contains(*net, *ip)) return Transport::HttpsThenHttp;
      continue;
    }
    // An entry without a port covers every port of that host.
    const std::string entry_host = host_part(e);
    bool entry_has_port = e.size() > entry_host.size() + (e.front() == '[' ? 2 : 0);
    if (entry_has_port) continue;
    if (entry_host == host) return Transport::HttpsThenHttp;
    // "[::1]", "::1" and "0:0::1" name the same host.
    auto entry_ip = parse_ip(entry_host);
    if (ip && entry_ip && entry_ip->family == ip->family && entry_ip->bytes == ip->bytes)
      return Transport::HttpsThenHttp;
  }
  return is_loopback(d) ? Transport::Http : Transport::Https;
}

bool falls_back_to_http(http::Failure f) { return f == http::Failure::Tls || f == http::Failure::Refused; }

}  // namespace builder::registry
