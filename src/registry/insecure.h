// registry/insecure.h — how a registry may be reached: Docker's --insecure-registry rule
// (https with the certificate unchecked, falling back to plain http) for listed hosts,
// plain http for loopback hosts, verified https for everything else. Pure policy: no I/O;
// client.cpp acts on it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "registry/http.h"

namespace builder::registry {

enum class Transport {
  Https,          ///< https, the certificate verified (every registry not listed)
  HttpsThenHttp,  ///< listed insecure: https without verification, else plain http
  Http,           ///< loopback, not listed: plain http only (local mirrors, tests)
};

/// Checks and normalises one --insecure-registry value: "host", "host:port",
/// "[v6]:port", or an IP network in CIDR form ("10.0.0.0/8", "fd00::/8"); lower-cased.
/// Throws base::Error ("--insecure-registry `X`: ...") on anything else, a scheme or path
/// included (as dockerd refuses them).
std::string normalize_insecure_entry(std::string_view entry);

/// The transport for a registry domain ("host[:port]") given the listed entries: listed
/// when an entry equals the domain, is its host without a port (covering every port), or
/// is a CIDR network holding the domain's IP literal. Entries are compared normalised;
/// a malformed entry matches nothing.
Transport transport_for(const std::string& domain, const std::vector<std::string>& insecure);

/// Whether an https attempt that failed with `f` lets an insecure registry be tried over
/// plain http: the TLS handshake failed (the server speaks http) or the https port
/// refused the connection, as Docker falls back. Timeouts and resets do not.
bool falls_back_to_http(http::Failure f);

}  // namespace builder::registry
