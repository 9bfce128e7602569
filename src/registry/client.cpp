// The registry protocol over http.h: URLs, Accept headers, the 401 -> challenge ->
// token dance (tokens cached per registry and scope), digest and size checks while
// bodies stream, uploads and mounts. Errors name the registry, repository and step.
#include "registry/client.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/strings.h"
#include "registry/auth.h"
#include "registry/docker_config.h"
#include "registry/http.h"
#include "registry/insecure.h"

namespace builder::registry {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kManifestAccept =
    "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

/// " (CODE: message)" from a registry's JSON error body, or the body's first line.
std::string error_detail(const http::Response& r) {
  std::string out;
  try {
    auto j = base::Json::parse(r.body);
    if (j.is_object() && j.contains("errors") && j["errors"].is_array()) {
      for (const auto& e : j["errors"]) {
        if (!out.empty()) out += "; ";
        if (e.contains("code") && e["code"].is_string()) out += e["code"].get<std::string>();
        if (e.contains("message") && e["message"].is_string()) out += ": " + e["message"].get<std::string>();
      }
    } else if (j.is_object() && j.contains("details") && j["details"].is_string()) {
      out = j["details"].get<std::string>();
    }
  } catch (const std::exception&) {
    std::string_view b = base::trim(r.body);
    b = b.substr(0, std::min(b.find('\n'), size_t{200}));
    out = std::string(b);
  }
  return out.empty() ? "" : " (" + out + ")";
}

std::string status_text(long s) {
  switch (s) {
    case 400: return "400 Bad Request";
    case 401: return "401 Unauthorized";
    case 403: return "403 Forbidden";
    case 404: return "404 Not Found";
    case 405: return "405 Method Not Allowed";
    case 413: return "413 Payload Too Large";
    case 416: return "416 Range Not Satisfiable";
    case 429: return "429 Too Many Requests";
    case 500: return "500 Internal Server Error";
    case 502: return "502 Bad Gateway";
    case 503: return "503 Service Unavailable";
    default: return "HTTP " + std::to_string(s);
  }
}

std::string scope_of(const std::string& path, const std::string& actions) {
  return "repository:" + path + ":" + actions;
}

struct CachedToken {
  std::string token;
  Clock::time_point expires;
};

}  // namespace

struct Client::Impl {
  ClientOptions opts;
  std::mutex mu;
  std::map<std::string, Challenge> challenges;           // domain -> how it wants auth
  std::map<std::string, CachedToken> tokens;             // domain + " " + scopes -> token
  std::map<std::string, std::optional<Credentials>> creds;  // domain -> from config.json (or login)

  std::string config_path() const {
    return opts.docker_config.empty() ? default_docker_config_path() : opts.docker_config;
  }

  std::optional<Credentials> credentials(const std::string& domain) {
    std::lock_guard lock(mu);
    auto it = creds.find(domain);
    if (it != creds.end()) return it->second;
    auto c = read_credentials(config_path(), domain);
    creds[domain] = c;
    return c;
  }

  std::map<std::string, std::string> schemes;  // insecure domain -> "https" or "http", once probed

  Transport transport(const std::string& domain) const { return transport_for(domain, opts.insecure_registries); }

  /// "https" or "http". An insecure registry is asked once per client, as Docker does:
  /// GET /v2/ over https without certificate checks; a TLS handshake failure or a refused
  /// connection means plain http. Any HTTP answer (even 401 or 404) means https.
  std::string scheme(const std::string& domain) {
    Transport t = transport(domain);
    if (t == Transport::Https) return "https";
    if (t == Transport::Http) return "http";
    {
      std::lock_guard lock(mu);
      if (auto it = schemes.find(domain); it != schemes.end()) return it->second;
    }
    http::Request probe;
    probe.url = "https://" + registry_host(domain) + "/v2/";
    probe.verify_tls = false;
    probe.attempts = 1;
    probe.follow_redirects = false;
    probe.max_body = 64 << 10;
    // A plain-http server may sit silent on a TLS hello; do not wait the full 30 s.
    probe.connect_timeout_s = 10;
    std::string chosen = "https";
    try {
      http::send(probe);
    } catch (const http::TransportError& e) {
      if (falls_back_to_http(e.failure)) chosen = "http";
      base::log_debug("registry " + domain + ": https: " + e.message() + "; using " + chosen);
    }
    std::lock_guard lock(mu);
    return schemes.emplace(domain, chosen).first->second;
  }

  /// Whether requests to `domain` (and the redirects they follow) check the TLS
  /// certificate: not for a registry listed insecure.
  bool verify_tls(const std::string& domain) const { return transport(domain) != Transport::HttpsThenHttp; }

  /// The token realm of an insecure registry is as trusted as the registry when it is on
  /// the same host; any other realm's certificate is checked unless it is listed itself.
  bool verify_realm_tls(const std::string& domain, const std::string& realm) const {
    std::string realm_origin = http::origin_of(realm);  // "https://host:port"
    std::string realm_hostport = realm_origin.substr(std::min(realm_origin.size(), realm_origin.find("://") + 3));
    std::string realm_host = realm_hostport.substr(0, realm_hostport.rfind(':'));
    std::string registry_host_only = registry_host(domain);
    if (registry_host_only.front() != '[') registry_host_only = registry_host_only.substr(0, registry_host_only.rfind(':'));
    else registry_host_only = registry_host_only.substr(0, registry_host_only.find(']') + 1);
    if (!verify_tls(domain) && base::to_lower(registry_host_only) == realm_host) return false;
    return verify_tls(realm_hostport) && verify_tls(realm_host);
  }

  std::string base_url(const std::string& domain) {
    return scheme(domain) + "://" + registry_host(domain) + "/v2/";
  }

  /// The Authorization value for `scopes` on `domain`, from what the registry asked for
  /// last time; "" before the first challenge.
  std::string authorization(const std::string& domain, const std::vector<std::string>& scopes) {
    Challenge ch;
    {
      std::lock_guard lock(mu);
      auto it = challenges.find(domain);
      if (it == challenges.end()) return {};
      ch = it->second;
    }
    auto c = credentials(domain);
    if (ch.scheme == "basic") {
      if (!c || (c->username.empty() && c->password.empty())) return {};
      return "Basic " + base64_encode(c->username + ":" + c->password);
    }
    std::string key = domain + " " + base::join(scopes, " ");
    {
      std::lock_guard lock(mu);
      auto it = tokens.find(key);
      if (it != tokens.end() && it->second.expires > Clock::now()) return "Bearer " + it->second.token;
    }
    Token t = fetch_token(domain, ch, scopes, c);
    std::lock_guard lock(mu);
    // Ten seconds' margin so a token never expires in flight.
    tokens[key] = CachedToken{t.token, Clock::now() + std::chrono::seconds(std::max(10L, t.expires_in - 10))};
    return "Bearer " + t.token;
  }

  void forget_token(const std::string& domain, const std::vector<std::string>& scopes) {
    std::lock_guard lock(mu);
    tokens.erase(domain + " " + base::join(scopes, " "));
  }

  Token fetch_token(const std::string& domain, const Challenge& ch, const std::vector<std::string>& scopes,
                    const std::optional<Credentials>& c) {
    std::string realm = ch.param("realm");
    const std::string where = "registry " + domain + ": token server";
    if (realm.empty()) throw base::Error(where + ": the Bearer challenge has no realm");
    std::string realm_scheme = base::to_lower(realm.substr(0, realm.find("://")));
    if (realm_scheme != "https" && realm_scheme != "http") throw base::Error(where + ": bad realm `" + realm + "`");
    // Credentials go to the realm the registry named, but never in clear text to a
    // realm of a registry reached over https.
    bool have_creds = c && (!c->username.empty() || !c->identity_token.empty());
    if (have_creds && realm_scheme == "http" && scheme(domain) == "https")
      throw base::Error(where + ": refusing to send credentials to the plain-http realm `" + realm + "`");

    http::Request req;
    req.auth_origin = http::origin_of(realm);
    req.verify_tls = verify_realm_tls(domain, realm);
    if (have_creds && !c->identity_token.empty()) {
      // OAuth2 refresh token (docker login to Docker Hub with an identity token).
      std::string form = "grant_type=refresh_token&client_id=builder&refresh_token=" + http::escape(c->identity_token);
      if (!ch.param("service").empty()) form += "&service=" + http::escape(ch.param("service"));
      if (!scopes.empty()) form += "&scope=" + http::escape(base::join(scopes, " "));
      req.method = "POST";
      req.url = realm;
      req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
      req.body.bytes = form;
      req.body.present = true;
      auto r = http::send(req);  // `form` outlives the call
      if (r.status != 200)
        throw base::Error(where + " `" + realm + "`: " + status_text(r.status) + error_detail(r));
      return parse_token_response(r.body);
    }
    std::string url = realm;
    char sep = realm.find('?') == std::string::npos ? '?' : '&';
    auto add = [&](const std::string& k, const std::string& v) {
      url += sep + k + "=" + http::escape(v);
      sep = '&';
    };
    if (!ch.param("service").empty()) add("service", ch.param("service"));
    for (const auto& s : scopes) add("scope", s);
    req.url = url;
    if (have_creds) req.authorization = "Basic " + base64_encode(c->username + ":" + c->password);
    http::Response r;
    try {
      r = http::send(req);
    } catch (const http::TransportError& e) {
      throw base::Error(where + " `" + realm + "`: " + e.message());
    }
    if (r.status == 401 || r.status == 403)
      throw base::Error(where + " `" + realm + "` refused " +
                        (have_creds ? "the credentials for " + domain : std::string("anonymous access")) + ": " +
                        status_text(r.status) + error_detail(r));
    if (r.status != 200) throw base::Error(where + " `" + realm + "`: " + status_text(r.status) + error_detail(r));
    try {
      return parse_token_response(r.body);
    } catch (const base::Error& e) {
      throw base::Error(where + " `" + realm + "`: " + e.message());
    }
  }

  /// Sends `req` to `domain` with authorization for `scopes`: on a 401 it learns the
  /// challenge, gets fresh authorization and tries once more. `what` names the step
  /// for errors ("registry R: repository P: GET manifest latest").
  http::Response send(const std::string& domain, const std::vector<std::string>& scopes, http::Request req,
                      const std::string& what) {
    req.auth_origin = http::origin_of(base_url(domain));
    req.authorization = authorization(domain, scopes);
    req.verify_tls = verify_tls(domain);
    auto once = [&]() {
      try {
        return http::send(req);
      } catch (const http::TransportError& e) {
        if (e.aborted_by_sink) throw;
        std::string hint;
        if (transport(domain) == Transport::Https &&
            (e.failure == http::Failure::Certificate || e.failure == http::Failure::Tls))
          hint = e.failure == http::Failure::Certificate
                     ? "; the registry's TLS certificate is not trusted (for a registry you trust without "
                       "one, pass --insecure-registry " + domain + ")"
                     : "; TLS with the registry failed (if it serves plain http, pass --insecure-registry " +
                           domain + ")";
        throw base::Error(what + ": " + e.message() + " (" + req.url + ")" + hint);
      }
    };
    http::Response r = once();
    if (r.status != 401) return r;
    auto challenges_sent = parse_www_authenticate(base::join(r.all("www-authenticate"), ", "));
    const Challenge* pick = nullptr;
    for (const auto& ch : challenges_sent)
      if (ch.scheme == "bearer") pick = &ch;
    if (!pick)
      for (const auto& ch : challenges_sent)
        if (ch.scheme == "basic") pick = &ch;
    if (!pick) return r;  // nothing we can answer; the caller reports the 401
    {
      std::lock_guard lock(mu);
      challenges[domain] = *pick;
    }
    forget_token(domain, scopes);
    std::string auth = authorization(domain, scopes);
    if (auth.empty() || auth == req.authorization) return r;  // no (new) credentials to offer
    req.authorization = auth;
    return once();
  }
};

Client::Client(ClientOptions opts) : impl_(std::make_unique<Impl>()) { impl_->opts = std::move(opts); }
Client::~Client() = default;

std::string Client::scheme_for(const std::string& domain) const { return impl_->scheme(domain); }

namespace {

std::string where(const Reference& r) { return "registry " + r.domain + ": repository " + r.path; }

base::Error http_error(const std::string& what, const http::Response& r) {
  std::string msg = what + ": " + status_text(r.status) + error_detail(r);
  if (r.status == 401) msg += " (log in with `builder login`)";
  return base::Error(msg);
}

bool is_schema1(const std::string& media_type) {
  return media_type == "application/vnd.docker.distribution.manifest.v1+json" ||
         media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws";
}

}  // namespace

Fetched Client::get_manifest(const Reference& ref) {
  const std::string what = where(ref) + ": GET manifest " + ref.manifest_ref();
  http::Request req;
  req.url = impl_->base_url(ref.domain) + ref.path + "/manifests/" + ref.manifest_ref();
  req.headers.push_back(kManifestAccept);
  req.max_body = kMaxManifestSize;
  http::Response r;
  try {
    r = impl_->send(ref.domain, {scope_of(ref.path, "pull")}, req, what);
  } catch (const http::TransportError&) {
    throw base::Error(what + ": manifest larger than " + std::to_string(kMaxManifestSize) + " bytes");
  }
  if (r.status != 200) throw http_error(what, r);
  Fetched f;
  f.bytes = std::move(r.body);
  f.digest = base::Digest::of(f.bytes);
  f.media_type = r.header("content-type");
  if (auto semi = f.media_type.find(';'); semi != std::string::npos) f.media_type = std::string(base::trim(f.media_type.substr(0, semi)));
  // Registries without a precise Content-Type: the manifest's own mediaType says it.
  if (f.media_type.empty() || f.media_type == "application/json" || f.media_type == "application/octet-stream" ||
      f.media_type == "text/plain") {
    try {
      auto j = base::Json::parse(f.bytes);
      if (j.is_object() && j.contains("mediaType") && j["mediaType"].is_string())
        f.media_type = j["mediaType"].get<std::string>();
      else if (j.is_object() && j.contains("schemaVersion") && j["schemaVersion"] == 1)
        f.media_type = "application/vnd.docker.distribution.manifest.v1+json";
      else if (j.is_object() && j.contains("manifests"))
        f.media_type = image::kMediaTypeIndex;
      else
        f.media_type = image::kMediaTypeManifest;
    } catch (const std::exception&) {
      throw base::Error(what + ": the manifest is not valid JSON");
    }
  }
  if (is_schema1(f.media_type)) throw base::Error(what + ": schema 1 manifests are not supported");
  if (!ref.digest.empty() && f.digest.str() != ref.digest)
    throw base::Error(what + ": digest mismatch: the registry sent " + f.digest.str());
  std::string header_digest = r.header("docker-content-digest");
  if (!header_digest.empty() && base::Digest::valid(header_digest) && header_digest != f.digest.str())
    throw base::Error(what + ": digest mismatch: Docker-Content-Digest is " + header_digest + " but the content is " +
                      f.digest.str());
  return f;
}

std::optional<image::Descriptor> Client::head_manifest(const Reference& ref) {
  const std::string what = where(ref) + ": HEAD manifest " + ref.manifest_ref();
  http::Request req;
  req.method = "HEAD";
  req.url = impl_->base_url(ref.domain) + ref.path + "/manifests/" + ref.manifest_ref();
  req.headers.push_back(kManifestAccept);
  auto r = impl_->send(ref.domain, {scope_of(ref.path, "pull")}, req, what);
  if (r.status == 404) return std::nullopt;
  if (r.status != 200) throw http_error(what, r);
  std::string digest = r.header("docker-content-digest");
  std::string type = r.header("content-type");
  std::string length = r.header("content-length");
  if (!base::Digest::valid(digest) || type.empty() || length.empty()) {
    // Not every registry answers HEAD fully; the body tells everything.
    auto f = get_manifest(ref);
    return image::Descriptor{f.media_type, f.digest, f.bytes.size()};
  }
  if (!ref.digest.empty() && digest != ref.digest)
    throw base::Error(what + ": digest mismatch: the registry reports " + digest);
  if (auto semi = type.find(';'); semi != std::string::npos) type = std::string(base::trim(type.substr(0, semi)));
  return image::Descriptor{type, base::Digest::parse(digest), std::stoull(length)};
}

namespace {

/// Downloads blob `d`, feeding `write` and enforcing the size as bytes arrive.
/// `reset` starts a fresh destination before every attempt.
void download(Client::Impl& impl, const Reference& repo, const image::Descriptor& d,
              const std::function<void()>& reset, const std::function<void(const char*, size_t)>& write) {
  const std::string what = where(repo) + ": GET blob " + d.digest.str();
  uint64_t got = 0;
  bool overflow = false;
  http::Request req;
  req.url = impl.base_url(repo.domain) + repo.path + "/blobs/" + d.digest.str();
  req.on_attempt = [&] {
    got = 0;
    reset();
  };
  req.sink = [&](const char* data, size_t n) {
    if (got + n > d.size) {
      overflow = true;
      return false;
    }
    got += n;
    write(data, n);
    return true;
  };
  http::Response r;
  try {
    r = impl.send(repo.domain, {scope_of(repo.path, "pull")}, req, what);
  } catch (const http::TransportError&) {
    if (overflow) throw base::Error(what + ": the body is longer than the " + std::to_string(d.size) + " bytes its descriptor says (cut off)");
    throw;
  } catch (base::Error& e) {
    if (got < d.size && got > 0)
      throw base::Error(what + ": short body: " + std::to_string(got) + " of " + std::to_string(d.size) + " bytes, then " + e.message());
    throw;
  }
  if (r.status != 200) throw http_error(what, r);
  if (got != d.size)
    throw base::Error(what + ": short body: " + std::to_string(got) + " of " + std::to_string(d.size) + " bytes");
}

}  // namespace

void Client::fetch_blob(const Reference& repo, const image::Descriptor& d, cache::BlobStore& blobs) {
  if (blobs.has(d.digest)) return;
  std::optional<cache::BlobStore::Writer> w;
  download(*impl_, repo, d, [&] { w.emplace(blobs.ingest()); }, [&](const char* p, size_t n) { w->write(p, n); });
  try {
    w->commit(d.digest);
  } catch (const base::Error&) {
    throw base::Error(where(repo) + ": GET blob " + d.digest.str() + ": digest mismatch: the content does not hash to it");
  }
}

std::string Client::fetch_blob_bytes(const Reference& repo, const image::Descriptor& d, uint64_t max_size) {
  if (d.size > max_size)
    throw base::Error(where(repo) + ": blob " + d.digest.str() + " is " + std::to_string(d.size) +
                      " bytes, more than the limit of " + std::to_string(max_size));
  std::string out;
  download(*impl_, repo, d, [&] { out.clear(); }, [&](const char* p, size_t n) { out.append(p, n); });
  auto actual = base::Digest::of(out);
  if (actual != d.digest)
    throw base::Error(where(repo) + ": GET blob " + d.digest.str() + ": digest mismatch: the content hashes to " + actual.str());
  return out;
}

bool Client::blob_exists(const Reference& repo, const base::Digest& d) {
  const std::string what = where(repo) + ": HEAD blob " + d.str();
  http::Request req;
  req.method = "HEAD";
  req.url = impl_->base_url(repo.domain) + repo.path + "/blobs/" + d.str();
  // Checked before pushing: ask for push rights now, so the token is reused by the upload.
  auto r = impl_->send(repo.domain, {scope_of(repo.path, "pull,push")}, req, what);
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  throw http_error(what, r);
}

namespace {

/// POST an upload (or a mount); returns the response (201 mounted, 202 upload session).
http::Response start_upload(Client::Impl& impl, const Reference& repo, const base::Digest& d,
                            const std::string& mount_from) {
  std::string url = impl.base_url(repo.domain) + repo.path + "/blobs/uploads/";
  std::vector<std::string> scopes{scope_of(repo.path, "pull,push")};
  if (!mount_from.empty()) {
    url += "?mount=" + http::escape(d.str()) + "&from=" + http::escape(mount_from);
    scopes.push_back(scope_of(mount_from, "pull"));
  }
  http::Request req;
  req.method = "POST";
  req.url = url;
  req.body.present = true;  // empty body, Content-Length: 0
  return impl.send(repo.domain, scopes, req, where(repo) + ": POST blob upload");
}

void finish_upload(Client::Impl& impl, const Reference& repo, const base::Digest& d, const http::Response& started,
                   const http::Body& body) {
  const std::string what = where(repo) + ": PUT blob " + d.str();
  std::string location = started.header("location");
  if (location.empty()) throw base::Error(what + ": the registry gave no upload location");
  std::string url = http::resolve_url(started.url, location);
  url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + http::escape(d.str());
  http::Request req;
  req.method = "PUT";
  req.url = url;
  req.headers.push_back("Content-Type: application/octet-stream");
  req.body = body;
  req.body.present = true;
  auto r = impl.send(repo.domain, {scope_of(repo.path, "pull,push")}, req, what);
  if (r.status != 201 && r.status != 204) throw http_error(what, r);
  std::string got = r.header("docker-content-digest");
  if (!got.empty() && base::Digest::valid(got) && got != d.str())
    throw base::Error(what + ": the registry stored it as " + got);
}

}  // namespace

void Client::push_blob(const Reference& repo, const image::Descriptor& d, cache::BlobStore& blobs,
                       const std::string& mount_from_repo) {
  if (blob_exists(repo, d.digest)) return;
  if (!blobs.has(d.digest)) throw base::Error(where(repo) + ": cannot push blob " + d.digest.str() + ": not in the local store");
  base::Fd fd = blobs.open(d.digest);
  http::Body body;
  body.fd = fd.get();
  body.size = blobs.size(d.digest);
  std::string from = mount_from_repo == repo.path ? "" : mount_from_repo;
  auto started = start_upload(*impl_, repo, d.digest, from);
  if (!from.empty() && started.status == 201) {
    base::log_debug("registry: mounted " + d.digest.str() + " from " + from);
    return;
  }
  if (started.status != 202) throw http_error(where(repo) + ": POST blob upload", started);
  finish_upload(*impl_, repo, d.digest, started, body);
}

void Client::push_blob_bytes(const Reference& repo, const base::Digest& d, const std::string& bytes) {
  if (base::Digest::of(bytes) != d) throw base::Error(where(repo) + ": cannot push blob " + d.str() + ": content does not match");
  if (blob_exists(repo, d)) return;
  auto started = start_upload(*impl_, repo, d, "");
  if (started.status != 202) throw http_error(where(repo) + ": POST blob upload", started);
  http::Body body;
  body.bytes = bytes;
  finish_upload(*impl_, repo, d, started, body);
}

base::Digest Client::put_manifest(const Reference& ref, const std::string& media_type, const std::string& bytes) {
  const std::string what = where(ref) + ": PUT manifest " + ref.manifest_ref();
  auto digest = base::Digest::of(bytes);
  if (ref.tag.empty() && !ref.digest.empty() && ref.digest != digest.str())
    throw base::Error(what + ": the manifest's digest is " + digest.str());
  http::Request req;
  req.method = "PUT";
  req.url = impl_->base_url(ref.domain) + ref.path + "/manifests/" + (ref.tag.empty() ? ref.digest : ref.tag);
  req.headers.push_back("Content-Type: " + media_type);
  req.body.bytes = bytes;
  req.body.present = true;
  auto r = impl_->send(ref.domain, {scope_of(ref.path, "pull,push")}, req, what);
  if (r.status != 201 && r.status != 200) throw http_error(what, r);
  std::string got = r.header("docker-content-digest");
  if (!got.empty() && base::Digest::valid(got) && got != digest.str())
    throw base::Error(what + ": the registry stored it as " + got + ", not " + digest.str());
  return digest;
}

void Client::check_login(const std::string& domain, const std::string& user, const std::string& password) {
  if (!user.empty() || !password.empty()) {
    std::lock_guard lock(impl_->mu);
    impl_->creds[domain] = Credentials{user, password, {}};
  }
  const std::string what = "login to " + domain;
  http::Request req;
  req.url = impl_->base_url(domain);
  // No scope: the token server checks the credentials alone (as docker login does).
  auto r = impl_->send(domain, {}, req, what);
  if (r.status == 200) {
    // A registry without auth accepts anything; one with auth saw the credentials.
    return;
  }
  if (r.status == 401) throw base::Error(what + " failed: the registry refused the credentials" + error_detail(r));
  throw http_error(what, r);
}

}  // namespace builder::registry
