// solver/graph/ops.h — the build graph: the contract between the frontend and the
// solver. Plain values, no I/O. The frontend produces a Definition; the solver derives
// cache keys from the canonical encoding (encode.h) and runs vertices in input order.
// Nothing here knows Dockerfile syntax, sandboxes or snapshots.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/error.h"
#include "base/json.h"

namespace builder::graph {

/// Where a vertex's file system starts from.
struct SourceOp {
  enum class Kind { Scratch, Image, Local, Http, Git };
  Kind kind = Kind::Scratch;
  /// Image: the normalised reference as written ("busybox:latest").
  std::string ref;
  /// Image: the manifest digest it resolved to ("sha256:..."); pins the cache key.
  std::string digest;
  /// Local: the name of the local directory ("context"); the solver's backend maps it
  /// to a host directory.
  std::string local_name;
  /// Local: the paths (relative to the local root, may contain wildcards) this source
  /// selects. Empty means everything. The cache key covers exactly these files.
  std::vector<std::string> include_patterns;
  /// Local: .dockerignore-style patterns of paths that never enter the build.
  std::vector<std::string> exclude_patterns;
  /// Http: the URL fetched; Git: the remote as git understands it (no #fragment).
  std::string url;
  /// Http: "sha256:<hex>" the body must have (ADD --checksum): then it alone is the
  /// content's key and nothing is fetched when the result is cached. Git: the commit
  /// (full hex) the ref must resolve to. Empty: the executor resolves the content.
  std::string checksum;
  /// Http: the name of the one file of the result, mode 0600, its mtime the response's
  /// Last-Modified (BuildKit's http source).
  std::string filename;
  /// Git: branch, tag, full ref or commit; empty means the remote's HEAD.
  std::string git_ref;
  /// Git: the directory of the repository that becomes the result's root ("" = all).
  std::string subdir;
  /// Git: keep the `.git` directory in the result.
  bool keep_git_dir = false;
};

enum class NetworkMode { Sandbox, Host, None };

/// A file system a RUN step sees besides its root (`RUN --mount`, heredoc scripts).
/// Nothing written to a mount becomes part of the step's layer.
/// Secret and Ssh mounts carry only the id the build's --secret / --ssh provides: the
/// value is looked up by the executor when the step runs, so it is in no cache key.
struct ExecMount {
  enum class Kind { Bind, Cache, Tmpfs, Secret, Ssh };
  enum class Sharing { Shared, Private, Locked };
  Kind kind = Kind::Bind;
  std::string target;  ///< absolute path in the container
  /// Bind: index into Vertex::inputs of the mounted state; Cache: of the state that
  /// seeds a new cache (`from`), or -1 for an empty one.
  int input = -1;
  std::string source = "/";  ///< path inside that state
  bool readonly = true;      ///< Bind with rw: writes go to a throw-away layer
  std::string cache_id;      ///< Cache: shared by every step that names it
  Sharing sharing = Sharing::Shared;
  /// Cache: the new cache directory's; Secret: the file's, Ssh: the socket's (set).
  std::optional<uint32_t> mode, uid, gid;
  int64_t size = 0;  ///< Tmpfs: bytes, 0 = the kernel's default
  /// Secret, Ssh: the id of the secret or agent. Secret: `target` may be empty when
  /// only `env` is set (no file).
  std::string id;
  /// Secret: also (or only) the value of this environment variable of the process.
  std::optional<std::string> env;
  /// Secret, Ssh: a missing one fails the step; otherwise the step runs without it.
  bool required = false;
};

/// Runs one process on top of input 0 (the root file system). The change it makes to
/// the root becomes the vertex's result (one new layer).
struct ExecOp {
  std::vector<std::string> args;  ///< argv; args[0] looked up in PATH from env
  std::vector<std::string> env;   ///< "KEY=value", in order
  std::string cwd = "/";          ///< absolute; created if missing
  std::string user;               ///< "" (root), "name", "uid", "name:group", "uid:gid"
  NetworkMode network = NetworkMode::Sandbox;
  bool insecure = false;  ///< --security=insecure (entitled by the caller)
  std::vector<ExecMount> mounts;
};

/// Copies files from an input into the target state (input 0).
struct CopyAction {
  int src_input = 1;                   ///< index into Vertex::inputs of the source
  std::vector<std::string> src_paths;  ///< relative to the source root; wildcards allowed
  std::string dest;                    ///< absolute; a trailing '/' means "into this dir"
  std::string chown;                   ///< "" (0:0) or "user[:group]", resolved in the target
  std::optional<uint32_t> chmod;       ///< mode for copied files and dirs
  /// Symbolic mode ("u+x,go-w"), applied to each copied entry's own mode; set instead
  /// of `chmod`.
  std::string chmod_symbolic;
  bool follow_symlinks = true;         ///< a source that is a symlink copies its target
  bool allow_wildcard = true;
  bool allow_empty_wildcard = false;   ///< a wildcard matching nothing is an error unless set
  /// Below each copied source directory, only paths these patterns select are copied
  /// (with the directories leading to them); .dockerignore syntax, relative to the
  /// source. Empty: everything.
  std::vector<std::string> include_patterns;
  /// Below each copied source directory, paths these patterns select are skipped.
  std::vector<std::string> exclude_patterns;
  /// Paths (relative to the source root) that must exist, or the copy fails.
  std::vector<std::string> required_paths;
  /// ADD: a source that is a tar archive (plain, gzip, bzip2, xz or zstd) is unpacked
  /// into the destination directory instead of copied.
  bool unpack_archives = false;
};

/// Writes a file with fixed contents (heredocs of COPY and RUN).
struct MkfileAction {
  std::string path;  ///< absolute; parents must exist
  std::string data;
  uint32_t mode = 0644;
  std::string chown;  ///< "" (0:0) or "user[:group]"
};

/// Creates a directory (WORKDIR, mount targets).
struct MkdirAction {
  std::string path;  ///< absolute
  uint32_t mode = 0755;
  bool make_parents = true;
  std::string chown;  ///< "" (0:0) or "user[:group]"
};

using FileAction = std::variant<CopyAction, MkdirAction, MkfileAction>;

/// File operations applied in order on top of input 0; the change is one layer.
struct FileOp {
  std::vector<FileAction> actions;
};

/// Stacks the layers of its inputs, input 0 at the bottom: the result of `COPY --link`,
/// whose copy is made on an empty state so that it does not depend on what lies below.
struct MergeOp {};

using Op = std::variant<SourceOp, ExecOp, FileOp, MergeOp>;

struct Vertex {
  Op op;
  /// Indices into Definition::vertices; each is smaller than this vertex's own index.
  std::vector<int> inputs;
};

/// One history entry of the image config, in order.
struct History {
  std::string created_by;
  std::string comment;
  bool empty_layer = false;
  std::string created;  ///< RFC 3339; empty means "the build's time"
  std::string author;
};

/// What the exporter writes besides layers: the image config of the target stage.
struct ImageSpec {
  /// OCI image config "config" object (Env, Cmd, Entrypoint, WorkingDir, User,
  /// ExposedPorts, Volumes, Labels, StopSignal, Shell, Healthcheck, OnBuild, ...),
  /// already including what the base image set.
  base::Json config = base::Json::object();
  /// Base image history followed by this build's entries. Every entry with
  /// empty_layer == false matches one layer of the result, in order.
  std::vector<History> history;
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;
  std::string author;
};

/// A complete build: vertices in topological order and the target.
struct Definition {
  std::vector<Vertex> vertices;
  int result = -1;  ///< the vertex whose result is the image
  ImageSpec image;
};

/// Where each vertex came from; kept beside the Definition, outside its digest.
struct SourceInfo {
  base::SourceRange range;  ///< the instruction's range in the Dockerfile
  std::string name;         ///< progress name: "[build 2/4] RUN make"
  std::string stage;        ///< stage name or index
};
using SourceMap = std::vector<SourceInfo>;  ///< indexed like Definition::vertices

}  // namespace builder::graph
