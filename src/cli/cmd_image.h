// cli/cmd_image.h — what the image verb files share (cmd_image.cpp: images, save, load,
// import, tag, rmi, image prune and the `builder image` group; cmd_image_inspect.cpp:
// inspect with --format, image history). Internal to cli/.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/store.h"

namespace builder::cli {

/// "Error: No such image: X" on stderr, as docker prints it.
void print_no_such_image(const std::string& ref);
/// A name as Docker's daemon echoes it in errors: normalised, or as typed.
std::string display_ref(const std::string& ref);
/// Unix seconds an image was created: its config's "created", else `fallback`.
int64_t image_created(const image::Image& img, int64_t fallback);
/// Bytes of an image's layers as stored (compressed blobs), the SIZE builder shows.
uint64_t image_size(const image::Image& img);
/// "sha256:<hex>" shortened to docker's 12 hex digits unless `no_trunc`.
std::string short_id(const base::Digest& d, bool no_trunc = false);

/// A container of root/containers/ (runtime/ writes config.json there).
struct ContainerRef {
  std::string id;
  bool running = false;
};
/// Containers by the image ID (config digest string) they were started from.
std::map<std::string, std::vector<ContainerRef>> containers_by_image(const std::string& root);

/// `builder inspect` / `builder image inspect`; `format` is a Go-template subset.
int cmd_inspect(const std::string& root, const std::vector<std::string>& names, const std::string& format);
/// `builder image history`.
int cmd_image_history(const std::string& root, const std::string& ref, bool no_trunc, bool quiet);

/// Executes the subset of Go's text/template that docker's --format mostly sees:
/// literal text, {{.Field.Sub}}, {{.}}, {{json .Field}}, {{index .Field "key"}} (and
/// json/index combined as {{json (index .Labels "k")}} is not supported). Values print
/// as Go prints them (maps as map[k:v], arrays as [a b]). Throws base::Error on
/// anything else and on a missing key, as docker does.
std::string render_template(const std::string& tmpl, const base::Json& value);

}  // namespace builder::cli
