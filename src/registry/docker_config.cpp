// Docker's config.json: the "auths" map, keyed by registry host, each entry
// {"auth": base64("user:password")} and optionally "identitytoken"; "credsStore" and
// "credHelpers" name the credential helpers that hold secrets instead.
#include "registry/docker_config.h"

#include <cstdlib>

#include "base/error.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/strings.h"
#include "registry/auth.h"

namespace builder::registry {

namespace {

constexpr const char* kDockerHubKey = "https://index.docker.io/v1/";

/// "https://host:5000/v2/" -> "host:5000".
std::string host_of(std::string s) {
  for (const char* scheme : {"https://", "http://"})
    if (s.rfind(scheme, 0) == 0) s = s.substr(std::string_view(scheme).size());
  if (auto slash = s.find('/'); slash != std::string::npos) s.resize(slash);
  return base::to_lower(s);
}

bool is_docker_hub(const std::string& host) {
  return host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io";
}

base::Json load(const std::string& path) {
  if (!base::path_exists(path)) return base::Json::object();
  std::string text = base::read_file(path);
  if (base::trim(text).empty()) return base::Json::object();
  base::Json j;
  try {
    j = base::Json::parse(text);
  } catch (const std::exception& e) {
    throw base::Error("docker config `" + path + "` is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw base::Error("docker config `" + path + "` is not a JSON object");
  return j;
}

void save(const std::string& path, const base::Json& j) {
  if (auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) base::make_dirs(path.substr(0, slash), 0700);
  base::write_file_atomic(path, j.dump(1, '\t') + "\n", 0600);
}

}  // namespace

std::string default_docker_config_path() {
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir && *dir) return base::path_join(dir, "config.json");
  const char* home = std::getenv("HOME");
  return base::path_join(home && *home ? home : "/root", ".docker/config.json");
}

std::string config_key(const std::string& server) {
  std::string host = host_of(server);
  return is_docker_hub(host) ? kDockerHubKey : host;
}

std::optional<CredentialHelper> credential_helper(const std::string& config_path, const std::string& domain) {
  base::Json j = load(config_path);
  const std::string want = host_of(domain);
  if (j.contains("credHelpers") && j["credHelpers"].is_object()) {
    for (const auto& [key, name] : j["credHelpers"].items()) {
      std::string host = host_of(key);
      if (!(host == want || (is_docker_hub(host) && is_docker_hub(want)))) continue;
      if (!name.is_string())
        throw base::Error("docker config `" + config_path + "`: credHelpers[\"" + key + "\"] is not a string");
      return CredentialHelper(name.get<std::string>(), "credHelpers[\"" + key + "\"] in `" + config_path + "`");
    }
  }
  if (j.contains("credsStore") && !j["credsStore"].is_null()) {
    if (!j["credsStore"].is_string())
      throw base::Error("docker config `" + config_path + "`: credsStore is not a string");
    // Docker treats an empty credsStore as none.
    if (!j["credsStore"].get<std::string>().empty())
      return CredentialHelper(j["credsStore"].get<std::string>(), "credsStore in `" + config_path + "`");
  }
  return std::nullopt;
}

std::optional<Credentials> read_credentials(const std::string& config_path, const std::string& domain) {
  if (auto helper = credential_helper(config_path, domain)) {
    // Only the helper counts then (Docker overwrites whatever "auths" says with its answer).
    auto hc = helper->get(config_key(domain));
    if (!hc) return std::nullopt;
    return Credentials{hc->username, hc->secret, hc->identity_token};
  }
  base::Json j = load(config_path);
  if (!j.contains("auths") || !j["auths"].is_object()) return std::nullopt;
  const std::string want = host_of(domain);
  for (const auto& [key, entry] : j["auths"].items()) {
    std::string host = host_of(key);
    if (!(host == want || (is_docker_hub(host) && is_docker_hub(want)))) continue;
    if (!entry.is_object()) continue;
    Credentials c;
    if (entry.contains("auth") && entry["auth"].is_string() && !entry["auth"].get<std::string>().empty()) {
      std::string decoded;
      try {
        decoded = base64_decode(entry["auth"].get<std::string>());
      } catch (const base::Error&) {
        throw base::Error("docker config `" + config_path + "`: the auth of `" + key + "` is not valid base64");
      }
      auto colon = decoded.find(':');
      if (colon == std::string::npos)
        throw base::Error("docker config `" + config_path + "`: the auth of `" + key + "` is not user:password");
      c.username = decoded.substr(0, colon);
      c.password = decoded.substr(colon + 1);
    }
    if (entry.contains("identitytoken") && entry["identitytoken"].is_string())
      c.identity_token = entry["identitytoken"].get<std::string>();
    if (c.username.empty() && c.password.empty() && c.identity_token.empty()) continue;
    return c;
  }
  return std::nullopt;
}

std::string store_credentials(const std::string& config_path, const std::string& server, const Credentials& c) {
  auto helper = credential_helper(config_path, server);
  if (helper) helper->store(config_key(server), HelperCredentials{c.username, c.password, c.identity_token});
  base::Json j = load(config_path);
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = base::Json::object();
  // Drop entries for the same host under another spelling ("http://h:5000"), so the
  // one written now is the one read.
  const std::string key = config_key(server);
  std::vector<std::string> stale;
  for (const auto& [k, v] : j["auths"].items())
    if (k != key && config_key(k) == key) stale.push_back(k);
  for (const auto& k : stale) j["auths"].erase(k);
  base::Json entry = base::Json::object();
  if (!helper) {
    entry["auth"] = base64_encode(c.username + ":" + c.password);
    if (!c.identity_token.empty()) entry["identitytoken"] = c.identity_token;
  }
  j["auths"][key] = std::move(entry);
  save(config_path, j);
  return helper ? helper->program() : std::string();
}

bool remove_credentials(const std::string& config_path, const std::string& server) {
  if (!base::path_exists(config_path)) return false;
  const std::string key = config_key(server);
  bool erased = false;
  if (auto helper = credential_helper(config_path, server)) erased = helper->erase(key);
  base::Json j = load(config_path);
  if (!j.contains("auths") || !j["auths"].is_object()) return erased;
  std::vector<std::string> found;
  for (const auto& [k, v] : j["auths"].items())
    if (config_key(k) == key) found.push_back(k);
  if (found.empty()) return erased;
  for (const auto& k : found) j["auths"].erase(k);
  save(config_path, j);
  return true;
}

}  // namespace builder::registry
