// cli/build_contexts.h — `builder build --build-context NAME=VALUE`: a second local
// directory, `docker-image://REF`, or `oci-layout://PATH[:TAG][@DIGEST]` (imported into
// the store). Turns the values into the frontend's NamedContexts and the executor's
// local directories; knows nothing of how the Dockerfile uses them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "frontend/lower.h"
#include "image/store.h"

namespace builder::cli {

struct BuildContexts {
  std::map<std::string, frontend::NamedContext> named;  ///< for LowerOptions::named_contexts
  std::map<std::string, std::string> locals;            ///< executor local name -> host directory
};

/// Parses every --build-context value (a repeated NAME is an error) and imports the
/// oci-layout ones (blobs verified, the image recorded untagged). Throws base::Error
/// naming the value for an unknown scheme, a missing directory or a bad layout.
BuildContexts prepare_build_contexts(const std::vector<std::string>& specs, image::ImageStore& images);

/// Imports the image of an OCI layout directory: by `digest` if given, else the
/// manifest whose org.opencontainers.image.ref.name is `tag` (or the only one when the
/// layout has a single manifest). Returns the manifest digest.
base::Digest import_oci_layout(image::ImageStore& images, const std::string& dir, const std::string& tag,
                               const std::string& digest);

}  // namespace builder::cli
