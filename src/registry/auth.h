// registry/auth.h — the pieces of registry authentication that are plain text:
// WWW-Authenticate challenges (RFC 7235, as registries send them), token-server
// answers, base64. No HTTP here; client.cpp drives the exchange.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace builder::registry {

/// One challenge of a WWW-Authenticate header: `Bearer realm="...",service="..."`.
struct Challenge {
  std::string scheme;                        ///< lower case: "bearer", "basic"
  std::map<std::string, std::string> params;  ///< keys lower case, values unquoted
  std::string param(const std::string& key) const;
};

/// Parses a WWW-Authenticate value into its challenges (several may share one
/// header, separated by commas). Malformed parts are skipped, never thrown on.
std::vector<Challenge> parse_www_authenticate(std::string_view header);

/// A bearer token from a token server's JSON answer ("token" or "access_token"),
/// with its lifetime in seconds (expires_in, at least 60 as the spec says). Throws
/// base::Error when the answer has neither.
struct Token {
  std::string token;
  long expires_in = 60;
};
Token parse_token_response(std::string_view body);

std::string base64_encode(std::string_view data);
/// Throws base::Error on malformed input.
std::string base64_decode(std::string_view data);

}  // namespace builder::registry
