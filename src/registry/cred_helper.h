// registry/cred_helper.h — Docker credential helpers (docker-credential-<name> get /
// store / erase, JSON over stdin and stdout, as docker-credential-helpers defines them):
// the helper runs without a shell, its output is bounded, its stderr kept for the error,
// and a helper that hangs is killed after a timeout. Knows nothing of config.json.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace builder::registry {

/// What a helper keeps for a server. Username "<token>" means Secret is an identity
/// token (an OAuth2 refresh token); get() and store() translate, so `identity_token`
/// is set instead of `username`/`secret` then.
struct HelperCredentials {
  std::string username;
  std::string secret;
  std::string identity_token;
};

/// One helper program, found in PATH as "docker-credential-<name>".
class CredentialHelper {
 public:
  static constexpr std::chrono::seconds kDefaultTimeout{30};
  /// Helpers answer a few hundred bytes; more than this is refused.
  static constexpr size_t kMaxOutput = 1 << 20;

  /// `origin` says where the helper was configured, for messages ("credsStore in
  /// `/root/.docker/config.json`").
  CredentialHelper(std::string name, std::string origin, std::chrono::milliseconds timeout = kDefaultTimeout);

  /// `get`: the credentials for `server` (a config.json key: "https://index.docker.io/v1/"
  /// or "host[:port]"), nullopt when the helper says "credentials not found". Throws
  /// base::Error naming the helper: not in PATH, timed out, failed otherwise (with its
  /// output), or an answer that is not the expected JSON.
  std::optional<HelperCredentials> get(const std::string& server) const;
  /// `store`: {"ServerURL", "Username", "Secret"} on stdin. Throws as get().
  void store(const std::string& server, const HelperCredentials& c) const;
  /// `erase`: false when the helper had nothing for `server`. Throws as get().
  bool erase(const std::string& server) const;

  /// "docker-credential-<name>".
  std::string program() const { return "docker-credential-" + name_; }

 private:
  struct Run {
    int status = 0;
    std::string out, err;
  };
  Run run(const std::string& action, const std::string& input) const;
  std::string describe() const;

  std::string name_, origin_;
  std::chrono::milliseconds timeout_;
};

/// Whether a helper's output is docker-credential-helpers' "credentials not found".
bool is_credentials_not_found(const std::string& output);

}  // namespace builder::registry
