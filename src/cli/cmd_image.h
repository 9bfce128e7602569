// cli/cmd_image.h — what the image verb files share (cmd_image.cpp: images, save, load,
// tag, rmi, image prune and the `builder image` group; cmd_image_inspect.cpp: inspect
// with --format, image history; cmd_image_import.cpp: import). Internal to cli/.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/temp_dir.h"
#include "cache/store.h"
#include "cli.h"
#include "image/store.h"

namespace builder::cli {

/// `builder import` and `builder image import` (cmd_image_import.cpp).
void add_import(CLI::App& parent, Context& ctx);
/// A scratch directory for a stream (stdin, stdout) that the archive code wants as a
/// file; named so that Store::repair removes it if we are killed.
base::TempDir stream_dir(cache::Store& store, const std::string& what);
/// Copies `from` to `to` until end of file; `what` names `from` in errors.
void copy_fd(int from, int to, const std::string& what);

/// "Error: No such image: X" on stderr, as docker prints it.
void print_no_such_image(const std::string& ref);
/// A name as Docker's daemon echoes it in errors: normalised, or as typed.
std::string display_ref(const std::string& ref);
/// Unix seconds an image was created: its config's "created", else `fallback`.
int64_t image_created(const image::Image& img, int64_t fallback);
/// Docker's units.HumanSizeWithPrecision: decimal units (B kB MB GB TB PB), `precision`
/// significant digits as Go's %g prints them: 3 for `images` and `history` SIZE, 4
/// (units.HumanSize) for prune totals.
std::string docker_size(uint64_t bytes, int precision = 3);
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
/// `format` as print_formatted (empty: docker's default table).
int cmd_image_history(const std::string& root, const std::string& ref, bool no_trunc, bool quiet,
                      const std::string& format);

/// Executes the subset of Go's text/template that docker's --format mostly sees:
/// literal text, {{.Field.Sub}}, {{.}}, {{json .Field}}, {{index .Field "key"}} (and
/// json/index combined as {{json (index .Labels "k")}} is not supported). Values print
/// as Go prints them (maps as map[k:v], arrays as [a b]). Throws base::Error on
/// anything else and on a missing key, as docker does.
std::string render_template(const std::string& tmpl, const base::Json& value);

/// docker's --format for a listing (images, image history): "table TEMPLATE" (a header
/// row, each {{.Field}} rendered as its name in `headers`, then one row per value, laid
/// out by print_docker_table), "json" (each value as one line of JSON), or TEMPLATE
/// rendered once per value. As docker reads it, a literal `\t` or `\n` in the format
/// is a tab or newline. Everything is rendered before anything is printed, so a template
/// error (base::Error) prints nothing.
void print_formatted(const std::string& format, const std::vector<base::Json>& values, const base::Json& headers);
/// Throws base::Error when `format` names a field `headers` lacks (or is malformed), so
/// a listing can refuse a bad --format before doing any work.
void check_format(const std::string& format, const base::Json& headers);
/// docker's table layout: Go's tabwriter with minimum cell width 10 and padding 3,
/// widths counted in characters (UTF-8), the last column unpadded.
void print_docker_table(const std::vector<std::vector<std::string>>& rows);
/// A time as Go's time.Time prints it, in local time: "2006-01-02 15:04:05 -0700 MST".
std::string go_time(int64_t unix_seconds);

}  // namespace builder::cli
