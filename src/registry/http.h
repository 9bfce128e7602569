// registry/http.h — the HTTP transport under the registry client: one libcurl easy
// handle per request, connections shared through a curl share object, redirects
// followed by hand (the Authorization header only goes to the origin it was made for),
// retries with backoff on connection errors, 429 and 5xx. Knows nothing of registries.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace builder::registry::http {

/// A request body: bytes in memory, or `size` bytes of an open file from offset 0.
struct Body {
  std::string_view bytes;
  int fd = -1;
  uint64_t size = 0;
  bool present = false;
};

struct Request {
  std::string method = "GET";  ///< GET, HEAD, POST, PUT, PATCH, DELETE
  std::string url;
  std::vector<std::string> headers;  ///< "Name: value"
  /// Sent only while the URL's origin (scheme, host, port) is `auth_origin`.
  std::string authorization;
  std::string auth_origin;
  Body body;
  /// Receives a 2xx response's body; return false to abort the transfer (the abort is
  /// the caller's error, never retried). Without a sink the body is kept in
  /// Response::body, up to `max_body` bytes (more is an error).
  std::function<bool(const char*, size_t)> sink;
  /// Called before every attempt (first and retries), so a sink can start over.
  std::function<void()> on_attempt;
  uint64_t max_body = 1 << 20;
  bool follow_redirects = true;  ///< GET and HEAD only
  int attempts = 4;              ///< 1 + retries
  /// false: https without checking the server's certificate (an insecure registry).
  bool verify_tls = true;
  /// Seconds to connect, TLS handshake included.
  long connect_timeout_s = 30;
};

struct Response {
  long status = 0;
  std::string url;  ///< the final URL, after redirects
  std::vector<std::pair<std::string, std::string>> headers;  ///< names lower case
  std::string body;  ///< non-2xx bodies (truncated to 64 KiB) and sink-less 2xx bodies
  /// The first header of that (lower-case) name, or "".
  std::string header(std::string_view name) const;
  std::vector<std::string> all(std::string_view name) const;
};

/// What went wrong below HTTP, as far as the insecure-registry fallback cares.
enum class Failure {
  Other,        ///< reset, timeout, name resolution, a sink abort, ...
  Refused,      ///< nothing listens on the port (ECONNREFUSED)
  Tls,          ///< the TLS handshake failed (e.g. the server speaks plain http)
  Certificate,  ///< the server's certificate was not trusted
};

/// A transfer that failed below HTTP (connection refused, reset, timeout, TLS) after
/// every retry, or that the caller's sink (or the size limit) cut off.
struct TransportError : base::Error {
  explicit TransportError(const std::string& msg, bool aborted = false, bool perm = false,
                          Failure f = Failure::Other)
      : base::Error(msg), aborted_by_sink(aborted), permanent(perm), failure(f) {}
  bool aborted_by_sink = false;
  bool permanent = false;  ///< not worth retrying (the host does not resolve, an untrusted certificate)
  Failure failure = Failure::Other;
};

/// Sends `req`, following redirects and retrying. Returns the final response whatever its
/// status (the caller judges 4xx, and a 429/5xx left after the last retry); throws
/// TransportError on a transport failure after all retries (never retried when the sink
/// aborted), base::Error on a redirect loop.
Response send(const Request& req);

/// scheme://host[:port] of a URL ("" if it does not parse).
std::string origin_of(const std::string& url);
/// Resolves a Location header against the URL it came from.
std::string resolve_url(const std::string& base, const std::string& location);
/// Percent-encodes a query parameter value.
std::string escape(std::string_view s);
/// Backoff before retry `n` (1-based): 0.2 s, 0.8 s, 2 s.
std::chrono::milliseconds backoff(int n);

}  // namespace builder::registry::http
