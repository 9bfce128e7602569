// image/unpack.h — an image's layers as snapshot directories, each unpacked once and
// shared: the cache index maps "layer:<diff id>" to the snapshot holding that layer
// on top of the same parent chain. Used by builds (FROM) and by `builder run`.
#pragma once

#include <string>
#include <vector>

#include "cache/store.h"
#include "image/store.h"

namespace builder::image {

/// Snapshot ids of `img`'s layers, bottom first, unpacking the ones not yet present.
/// Thread-safe; two callers racing on one layer may both unpack it, one result wins.
std::vector<std::string> unpack_image(cache::Store& store, const Image& img);

}  // namespace builder::image
