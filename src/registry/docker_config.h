// registry/docker_config.h — credentials in Docker's client config file
// (~/.docker/config.json, or $DOCKER_CONFIG/config.json): read for pulls and pushes,
// written by `builder login`, removed by `builder logout`. Other keys of the file are
// kept as they are. As Docker: a credential helper named by "credHelpers" (per registry)
// or "credsStore" (every other registry) holds the secrets instead of "auths".
#pragma once

#include <optional>
#include <string>

#include "registry/cred_helper.h"

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

/// The credential helper config.json names for `domain`: its "credHelpers" entry (keys
/// matched as "auths" keys are: with or without scheme or path, Docker Hub's spellings
/// alike), else "credsStore"; nullopt when neither is set. Throws base::Error when the
/// file is not valid JSON or the helper name is not a string.
std::optional<CredentialHelper> credential_helper(const std::string& config_path, const std::string& domain);

/// The credentials for `domain` (a reference's domain): from its credential helper when
/// one applies (`get` with config_key(domain); "credentials not found" is nullopt),
/// else from "auths", matching keys written with or without a scheme or path. nullopt
/// when the file or the entry is missing. Throws base::Error when the file is not valid
/// JSON, the entry's "auth" is not base64 of "user:password", or the helper fails.
std::optional<Credentials> read_credentials(const std::string& config_path, const std::string& domain);

/// Stores credentials for `server`: through its credential helper when one applies (the
/// file then gets an empty "auths" entry for the server, as Docker writes, and no
/// secret), else in "auths" (creating the file and its directory, mode 0600; other keys
/// and entries kept). Returns the helper program used, "" for the file. Throws
/// base::Error on an unreadable existing file or a failing helper.
std::string store_credentials(const std::string& config_path, const std::string& server, const Credentials& c);

/// Removes the credentials for `server`: `erase` through its credential helper when one
/// applies, and every "auths" entry for it. False when there was none anywhere.
bool remove_credentials(const std::string& config_path, const std::string& server);

}  // namespace builder::registry
