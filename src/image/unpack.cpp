#include "image/unpack.h"

#include "base/error.h"
#include "base/json.h"

namespace builder::image {

std::vector<std::string> unpack_image(cache::Store& store, const Image& img) {
  std::vector<std::string> ids;
  // The key chains the diff ids below, so a snapshot's parent is always the same.
  std::string chain;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    const auto& layer = img.layers[i];
    chain += (i < img.diff_ids.size() ? img.diff_ids[i].str() : layer.digest.str()) + ";";
    std::string key = "layer:" + base::Digest::of(chain).str();
    if (auto hit = store.index().get(key)) {
      auto j = base::Json::parse(*hit, nullptr, false);
      if (j.is_array() && j.size() == 1 && j[0].is_string() && store.snapshots().get(j[0].get<std::string>())) {
        ids.push_back(j[0].get<std::string>());
        continue;
      }
    }
    auto pending = store.snapshots().create();
    base::Fd fd = store.blobs().open(layer.digest);
    base::Digest diff;
    try {
      diff = apply_layer(fd.get(), pending.fs_dir());
    } catch (base::Error& e) {
      throw e.add_context("while unpacking layer " + layer.digest.str());
    }
    if (i < img.diff_ids.size() && diff != img.diff_ids[i])
      throw base::Error("layer " + layer.digest.str() + " does not match its diff id " + img.diff_ids[i].str() +
                        " (got " + diff.str() + ")");
    std::string id = pending.commit(ids.empty() ? std::string() : ids.back());
    store.snapshots().set_blob(id, diff.str(), layer.digest.str(), static_cast<int64_t>(layer.size),
                               layer.media_type);
    store.index().put(key, base::Json::array({id}).dump());
    ids.push_back(id);
  }
  return ids;
}

}  // namespace builder::image
