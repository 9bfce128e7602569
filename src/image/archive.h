// image/archive.h — images in and out of tar archives: OCI image layout archives,
// `docker save` archives (manifest.json + config + layers, which `docker load` reads),
// and `import` of a plain rootfs tar as a one-layer image.
#pragma once

#include <string>
#include <vector>

#include "base/json.h"
#include "image/store.h"

namespace builder::image {

/// Writes an OCI image layout as a tar at `out_path` (atomically: temp + rename) with
/// the images behind `refs`; index.json annotates each manifest with
/// org.opencontainers.image.ref.name (the tag) and io.containerd.image.name.
void save_oci_archive(ImageStore& images, const std::vector<std::string>& refs, const std::string& out_path);
/// Writes a docker-save archive (manifest.json with Config/RepoTags/Layers, the config
/// and each layer, plus oci-layout/index.json) at `out_path`; `docker load` reads it.
void save_docker_archive(ImageStore& images, const std::vector<std::string>& refs, const std::string& out_path);
/// Loads an OCI layout archive or a docker-save archive (detected), verifying every
/// blob's digest; tags the names recorded in it. Returns the names (or image IDs when
/// an image carries no name). Nothing is tagged if any blob is bad.
std::vector<std::string> load_archive(ImageStore& images, const std::string& path);
/// Makes a one-layer image from a rootfs tar (plain or gzip) and tags it `name` (when
/// empty, the image is recorded untagged, see ImageStore::add_image).
/// `config` is merged into the default config (Env PATH, Cmd none). Returns the image ID.
std::string import_rootfs(ImageStore& images, const std::string& tar_path, const std::string& name,
                          const base::Json& config = base::Json::object());

}  // namespace builder::image
