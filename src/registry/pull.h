// registry/pull.h — whole images between a registry and the local image store: pull
// (index -> linux/amd64 manifest -> config + layers, all verified) and push (blobs that
// exist skipped, cross-repo mounts, then the manifest). Knows nothing of builds.
#pragma once

#include <optional>
#include <string>

#include "base/digest.h"
#include "base/json.h"
#include "image/store.h"
#include "registry/client.h"
#include "registry/reference.h"

namespace builder::registry {

/// Pulls `ref` (an index selects linux/amd64) into the store: blobs verified, the
/// manifest stored byte for byte (same digest as the registry's; an index too), then
/// tagged under image::normalize_ref of repository:tag (a pull by digest alone tags
/// nothing: find_by_digest finds it), with an index's digest recorded for the manifest
/// (ImageStore::record_index) in the same transaction, so `name@<index digest>` resolves
/// in every verb. Nothing is tagged when any part fails. Throws base::Error: a schema 1
/// manifest, an index without linux/amd64 (listing the platforms it has), a config whose
/// rootfs.diff_ids count disagrees with the layers, any transfer or digest error.
image::Image pull_image(Client& c, image::ImageStore& images, const Reference& ref);

/// Pushes an image of the store to `dest`: config and layers (existing ones skipped,
/// mounted from the repository the image was pulled from when on the same registry),
/// then the manifest as stored, under dest.tag. Returns the manifest digest.
base::Digest push_image(Client& c, image::ImageStore& images, const image::Image& img,
                        const Reference& dest);

/// Like pull_image, but returns the image already in the store when `ref` names a digest
/// that is present, and otherwise pulls. Used by FROM resolution.
image::Image ensure_image(Client& c, image::ImageStore& images, const Reference& ref);

/// The image of the store whose manifest (or index, then its linux/amd64 manifest) has
/// digest `ref.digest`; nullopt when `ref` has no digest or the blobs are missing.
std::optional<image::Image> find_by_digest(image::ImageStore& images, const Reference& ref);

/// The linux/amd64 entry of an image index (OCI or Docker manifest list). Throws
/// base::Error "`what` has no linux/amd64 image (it has: linux/arm64, ...)".
image::Descriptor select_platform(const base::Json& index, const std::string& what);

}  // namespace builder::registry
