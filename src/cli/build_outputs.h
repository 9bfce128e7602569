// cli/build_outputs.h — `builder build --output`: parsing buildx's syntax (CSV fields,
// one --output per exporter, several at once), SOURCE_DATE_EPOCH, and running each
// exporter on the build's result. Each output is independent: its own compression,
// media types and names.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/compress.h"
#include "image/store.h"
#include "solver/graph/ops.h"
#include "solver/ops/executor.h"

namespace builder::cli {

struct OutputSpec {
  /// image | registry | oci | docker | local | tar (registry is image with push=true).
  std::string type = "image";
  std::string dest;                ///< file or directory; "-" is stdout (tar streams only)
  std::vector<std::string> names;  ///< name= (normalised); empty: the -t tags
  bool push = false;
  bool tar = true;                 ///< type=oci: false writes an OCI layout directory
  bool insecure = false;           ///< registry.insecure=true: http / unverified TLS for the push
  image::CompressionSpec compression;
  bool rewrite_timestamp = false;

  /// Whether this output makes an image (store, registry, archive) rather than a tree.
  bool makes_image() const { return type == "image" || type == "registry" || type == "oci" || type == "docker"; }
};

/// Parses one --output value: `type=T,key=value,...` with buildx's CSV quoting (a field
/// in double quotes may hold commas: `"name=a:1,b:2"`), `DIR` alone (type=local) or `-`
/// alone (type=tar to stdout). Throws base::Error naming an unknown type, an unknown key,
/// a key that does not apply to the type, a bad value, or a missing dest.
OutputSpec parse_output(const std::string& value);

/// Every --output (the default is type=image); refuses two outputs to the same dest and
/// more than one to stdout.
std::vector<OutputSpec> parse_outputs(const std::vector<std::string>& values);

/// SOURCE_DATE_EPOCH: the build arg if given (and not empty), else the environment
/// variable; nullopt when neither. Throws base::Error unless it is unix seconds.
std::optional<int64_t> source_date_epoch(const std::map<std::string, std::string>& build_args);

/// Checks, before the build, what depends on the rest of the command line:
/// rewrite-timestamp=true needs an epoch, push=true needs a name (name= or -t `tags`).
void check_outputs(const std::vector<OutputSpec>& outputs, std::optional<int64_t> epoch,
                   const std::vector<std::string>& tags);

/// Whether an output streams to stdout (then nothing else may be printed there).
bool writes_stdout(const std::vector<OutputSpec>& outputs);

struct OutputsDone {
  ops::ExportedImage image;         ///< the first image written (the ID builder prints)
  std::vector<std::string> named;   ///< names set in the local store
  std::vector<std::string> pushed;  ///< "name@digest" pushed to registries
};

/// Runs every output in order on `result`. `tags` are the -t names (normalised).
/// `note` receives progress lines for people ("pushing ..."). Throws base::Error on the
/// first failing output; outputs written before it stay (each is whole).
OutputsDone run_outputs(ops::LocalExecutor& executor, image::ImageStore& images, const ops::Result& result,
                        const graph::ImageSpec& spec, const std::vector<OutputSpec>& outputs,
                        const std::vector<std::string>& tags, std::optional<int64_t> epoch,
                        const std::function<void(const std::string&)>& note);

}  // namespace builder::cli
