// cli/cache_options.h — `builder build --cache-from` / `--cache-to`: the option syntax
// (buildx's: comma-separated key=value, or a plain image reference) and one build's
// remote caches wired to its executor, with the registry backend (the registry client
// lives at this level; solver/ops knows only ops::CacheBackend).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cache/store.h"
#include "image/store.h"
#include "registry/client.h"
#include "solver/ops/executor.h"
#include "solver/ops/remote_cache.h"

namespace builder::cli {

/// One `--cache-to`: type=registry,ref=R | type=local,dest=DIR | type=inline, with
/// mode=min|max (default min), cache-mounts=true|false (default false; not for inline),
/// ignore-error=true|false (an export failure is then a warning). A bare `REF` is
/// type=registry,ref=REF.
struct CacheExportSpec {
  std::string type;  ///< "registry", "local", "inline"
  std::string ref;
  std::string dest;
  ops::CacheMode mode = ops::CacheMode::Min;
  bool cache_mounts = false;
  bool ignore_error = false;
};

/// One `--cache-from`: type=registry,ref=R | type=local,src=DIR | a bare image `REF`
/// (the image's inline cache: a local image of that name first, else the registry).
struct CacheImportSpec {
  std::string type;  ///< "registry", "local", "image"
  std::string ref;
  std::string src;
};

/// Throw base::Error with the option and what is wrong: unknown types and keys, a
/// missing ref/dest/src, bad values, a malformed reference, mode=max or cache-mounts
/// with inline.
CacheExportSpec parse_cache_to(const std::string& s);
CacheImportSpec parse_cache_from(const std::string& s);

/// The remote caches of one build. Not thread-safe itself; what it attaches is.
class BuildCache {
 public:
  /// `warn` gets one line per problem that does not fail the build; `registry_opts`
  /// (--insecure-registry) apply to type=registry caches as to FROM's pulls.
  BuildCache(cache::Store& store, image::ImageStore& images, std::vector<CacheImportSpec> from,
             std::vector<CacheExportSpec> to, std::function<void(const std::string&)> warn,
             registry::ClientOptions registry_opts = {});
  ~BuildCache();

  /// Reads every --cache-from now (failures are warnings) and attaches the caches to
  /// `executor`: lookups fall back to them, and a type=inline export adds its field to
  /// the image config. Nothing is attached when there is no --cache-from/--cache-to.
  void attach(ops::LocalExecutor& executor);
  /// Writes every --cache-to of type registry or local for the build's `final` result.
  /// Throws base::Error on failure unless that export has ignore-error=true. Returns
  /// one line per export written ("exported cache to ...: N records, M layers").
  std::vector<std::string> export_caches(ops::LocalExecutor& executor, const ops::Result& final);

 private:
  registry::Client& client();

  cache::Store& store_;
  image::ImageStore& images_;
  std::vector<CacheImportSpec> from_;
  std::vector<CacheExportSpec> to_;
  std::function<void(const std::string&)> warn_;
  registry::ClientOptions registry_opts_;
  std::unique_ptr<registry::Client> client_;
  std::unique_ptr<ops::RemoteCache> remote_;
};

}  // namespace builder::cli
