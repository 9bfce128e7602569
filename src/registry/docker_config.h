// registry/docker_config.h — credentials in Docker's client config file
// (~/.docker/config.json, or $DOCKER_CONFIG/config.json): read for pulls and pushes,
// written by `builder login`, removed by `builder logout`. Other keys of the file are
// kept as they are. Credential helpers (credsStore, credHelpers) are not run.
#pragma once

#include <optional>
#include <string>

namespace builder::registry {

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  ///< an OAuth2 refresh token ("identitytoken"), if the login gave one
};

/// $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
std::string default_docker_config_path();

/// The key config.json uses for a registry: Docker Hub ("docker.io",
/// "index.docker.io", "registry-1.docker.io") is "https://index.docker.io/v1/"; any
/// other server is its host[:port] (a scheme or path given by the user is dropped).
std::string config_key(const std::string& server);

/// The credentials stored for `domain` (a reference's domain), matching keys written
/// with or without a scheme or path. nullopt when the file or the entry is missing.
/// Throws base::Error when the file is not valid JSON or the entry's "auth" is not
/// base64 of "user:password".
std::optional<Credentials> read_credentials(const std::string& config_path, const std::string& domain);

/// Stores credentials for `server` (creating the file and its directory, mode 0600;
/// other keys and entries kept). Throws base::Error on an unreadable existing file.
void store_credentials(const std::string& config_path, const std::string& server, const Credentials& c);

/// Removes every entry for `server`; false when there was none.
bool remove_credentials(const std::string& config_path, const std::string& server);

}  // namespace builder::registry
