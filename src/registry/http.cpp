// libcurl transport for the registry client. Each request gets its own easy handle
// (handles are not thread-safe; requests run on many threads); a process-wide share
// object pools connections, DNS and TLS sessions across them.
#include "registry/http.h"

#include <curl/curl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "base/error.h"
#include "base/log.h"
#include "base/strings.h"
#include "registry/reference.h"

namespace builder::registry::http {

namespace {

/// curl_global_init once, and the shared connection pool with its locks.
struct Global {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;

  Global() {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    share = curl_share_init();
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, +[](CURL*, curl_lock_data d, curl_lock_access, void* p) {
      static_cast<Global*>(p)->locks[d].lock();
    });
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, +[](CURL*, curl_lock_data d, void* p) {
      static_cast<Global*>(p)->locks[d].unlock();
    });
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }
  // Never destroyed: easy handles of other static destructors could still use it.
};

Global& global() {
  static Global* g = new Global();
  return *g;
}

struct Easy {
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  ~Easy() {
    if (headers) curl_slist_free_all(headers);
    if (h) curl_easy_cleanup(h);
  }
};

/// One attempt's state, reachable from the curl callbacks.
struct Transfer {
  const Request* req = nullptr;
  CURL* h = nullptr;
  Response resp;
  uint64_t read_offset = 0;
  bool sink_aborted = false;
  bool too_large = false;
  std::string read_error;
  std::exception_ptr sink_error;
};

size_t on_header(char* data, size_t size, size_t n, void* p) {
  auto* t = static_cast<Transfer*>(p);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp.headers.clear();  // a new response (after 100 Continue)
    return size * n;
  }
  auto colon = line.find(':');
  if (colon != std::string_view::npos)
    t->resp.headers.emplace_back(base::to_lower(base::trim(line.substr(0, colon))),
                                 std::string(base::trim(line.substr(colon + 1))));
  return size * n;
}

size_t on_write(char* data, size_t size, size_t n, void* p) {
  auto* t = static_cast<Transfer*>(p);
  size_t len = size * n;
  long status = 0;
  curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
  bool ok = status >= 200 && status < 300;
  if (ok && t->req->sink) {
    // Exceptions must not cross curl's C frames: keep it, abort, rethrow after.
    try {
      if (!t->req->sink(data, len)) {
        t->sink_aborted = true;
        return 0;
      }
    } catch (...) {
      t->sink_error = std::current_exception();
      return 0;
    }
    return len;
  }
  if (!ok) {
    // An error body only feeds the message; keep its head and drop the rest.
    if (t->resp.body.size() < 64 * 1024) t->resp.body.append(data, std::min<size_t>(len, 64 * 1024 - t->resp.body.size()));
    return len;
  }
  if (t->resp.body.size() + len > t->req->max_body) {
    t->too_large = true;
    return 0;
  }
  t->resp.body.append(data, len);
  return len;
}

size_t on_read(char* buf, size_t size, size_t n, void* p) {
  auto* t = static_cast<Transfer*>(p);
  const Body& b = t->req->body;
  size_t want = size * n;
  uint64_t total = b.fd >= 0 ? b.size : b.bytes.size();
  if (t->read_offset >= total) return 0;
  want = static_cast<size_t>(std::min<uint64_t>(want, total - t->read_offset));
  if (b.fd >= 0) {
    ssize_t got;
    do {
      got = ::pread(b.fd, buf, want, static_cast<off_t>(t->read_offset));
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
      t->read_error = got < 0 ? "read error" : "file shorter than its size";
      return CURL_READFUNC_ABORT;
    }
    t->read_offset += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }
  std::memcpy(buf, b.bytes.data() + t->read_offset, want);
  t->read_offset += want;
  return want;
}

/// One HTTP exchange (no redirects, no retries). Throws TransportError.
Response perform(const Request& req, const std::string& url) {
  char errbuf[CURL_ERROR_SIZE] = {};  // declared before the handle, which may write it until cleanup
  Easy e;
  if (!e.h) throw TransportError("curl_easy_init failed");
  Transfer t;
  t.req = &req;
  t.h = e.h;
  t.resp.url = url;
  CURL* h = e.h;
  curl_easy_setopt(h, CURLOPT_SHARE, global().share);
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "builder");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, req.connect_timeout_s);
  if (!req.verify_tls) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  // A stalled transfer (under 1 byte/s for 60 s) is a connection error, retried.
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  // A proxy from the environment must not see loopback registries (tests, local mirrors).
  std::string host = origin_of(url);
  if (auto p = host.find("://"); p != std::string::npos) host = host.substr(p + 3);
  if (is_loopback(host)) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");

  for (const auto& hdr : req.headers) e.headers = curl_slist_append(e.headers, hdr.c_str());
  if (!req.authorization.empty() && origin_of(url) == req.auth_origin)
    e.headers = curl_slist_append(e.headers, ("Authorization: " + req.authorization).c_str());
  e.headers = curl_slist_append(e.headers, "Expect:");  // no 100-continue round trip

  const uint64_t body_size = req.body.fd >= 0 ? req.body.size : req.body.bytes.size();
  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
  } else if (req.method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_size));
  } else if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.body.present) {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    }
  }
  if (req.method == "PUT" || req.method == "POST" || req.body.present) {
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, e.headers);

  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &t.resp.status);
  if (t.sink_error) std::rethrow_exception(t.sink_error);
  if (t.sink_aborted) throw TransportError("aborted", true);
  if (t.too_large) throw TransportError("response larger than " + std::to_string(req.max_body) + " bytes", true);
  if (!t.read_error.empty()) throw TransportError("reading the request body: " + t.read_error, true);
  // An unknown host will not appear by retrying; the caller learns it at once.
  std::string msg = curl_easy_strerror(rc);
  if (errbuf[0] && msg != errbuf) msg += ": " + std::string(base::trim(errbuf));
  if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY) throw TransportError(msg, false, true);
  // An untrusted certificate stays untrusted: report it at once, never retried.
  if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR)
    throw TransportError(msg, false, true, Failure::Certificate);
  if (rc == CURLE_SSL_CONNECT_ERROR) throw TransportError(msg, false, false, Failure::Tls);
  if (rc == CURLE_COULDNT_CONNECT) throw TransportError(msg, false, false, Failure::Refused);
  if (rc != CURLE_OK) throw TransportError(msg);
  return std::move(t.resp);
}

bool retryable_status(long s) { return s == 429 || s >= 500; }

}  // namespace

std::string Response::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

std::vector<std::string> Response::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers)
    if (k == name) out.push_back(v);
  return out;
}

std::chrono::milliseconds backoff(int n) {
  static constexpr int kDelays[] = {200, 800, 2000};
  return std::chrono::milliseconds(kDelays[std::min(n, 3) - 1]);
}

std::string origin_of(const std::string& url) {
  CURLU* u = curl_url();
  std::string out;
  if (curl_url_set(u, CURLUPART_URL, url.c_str(), 0) == CURLUE_OK) {
    char *scheme = nullptr, *host = nullptr, *port = nullptr;
    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get(u, CURLUPART_HOST, &host, 0);
    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    if (scheme && host) out = base::to_lower(scheme) + "://" + base::to_lower(host) + ":" + (port ? port : "");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
  }
  curl_url_cleanup(u);
  return out;
}

std::string resolve_url(const std::string& base_url, const std::string& location) {
  CURLU* u = curl_url();
  std::string out = location;
  if (curl_url_set(u, CURLUPART_URL, base_url.c_str(), 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location.c_str(), 0) == CURLUE_OK) {
    char* s = nullptr;
    if (curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK && s) out = s;
    curl_free(s);
  }
  curl_url_cleanup(u);
  return out;
}

std::string escape(std::string_view s) {
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Response send(const Request& req) {
  global();
  std::string last_error;
  Failure last_failure = Failure::Other;
  for (int attempt = 1; attempt <= std::max(1, req.attempts); ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(backoff(attempt - 1));
    if (req.on_attempt) req.on_attempt();
    std::string url = req.url;
    try {
      Response r;
      for (int hops = 0;; ++hops) {
        r = perform(req, url);
        bool redirect = r.status == 301 || r.status == 302 || r.status == 303 || r.status == 307 || r.status == 308;
        if (!redirect || !req.follow_redirects || (req.method != "GET" && req.method != "HEAD")) break;
        std::string location = r.header("location");
        if (location.empty()) break;
        if (hops == 5) throw base::Error("too many redirects, last to " + location);
        url = resolve_url(url, location);
        base::log_debug("registry: redirected to " + url);
        if (req.on_attempt) req.on_attempt();
      }
      if (retryable_status(r.status) && attempt < req.attempts) {
        last_error = "HTTP " + std::to_string(r.status);
        base::log_debug("registry: " + req.method + " " + url + ": HTTP " + std::to_string(r.status) + ", retrying");
        continue;
      }
      return r;
    } catch (const TransportError& e) {
      if (e.aborted_by_sink || e.permanent || req.attempts <= 1) throw;
      last_error = e.message();
      last_failure = e.failure;
      base::log_debug("registry: " + req.method + " " + url + ": " + e.message());
    }
  }
  throw TransportError(last_error + " (after " + std::to_string(req.attempts) + " attempts)", false, false,
                       last_failure);
}

}  // namespace builder::registry::http
