// cli/cmd_build.cpp — `builder build`: Dockerfile -> parse -> lower -> solve -> export,
// and BuildKit-style error reports mapped through the SourceMap.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sys/stat.h>

#include <filesystem>
#include <list>
#include <map>
#include <optional>
#include <set>

#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"
#include "base/temp_dir.h"
#include "cache/ignore_file.h"
#include "cache/path_filter.h"
#include "cache/store.h"
#include "cli.h"
#include "sandbox_config.h"
#include "build_outputs.h"
#include "cache_options.h"
#include "build_contexts.h"
#include "cmd_check.h"
#include "cmd_prune.h"
#include "frontend/lower.h"
#include "frontend/parse.h"
#include "history_recorder.h"
#include "interrupt.h"
#include "image/archive.h"
#include "image/store.h"
#include "progress.h"
#include "registry/client.h"
#include "registry/pull.h"
#include "registry/reference.h"
#include "solver/ops/executor.h"
#include "solver/solver.h"
#include "step_log.h"

namespace builder::cli {
namespace {

struct BuildOptions {
  std::vector<std::string> tags;
  std::string file;
  std::vector<std::string> build_args;
  std::vector<std::string> allow;  ///< entitlements: network.host, security.insecure
  std::string target;
  bool no_cache = false;
  int parallelism = 0;  ///< steps at once; 0 = every ready step
  bool quiet = false;
  std::string progress = "auto";
  std::vector<std::string> outputs;
  std::string context;
  std::string call = "build";  ///< --call: build, check, outline, targets
  bool check = false;          ///< --check: --call=check
  int64_t pids_limit = -1;     ///< --pids-limit; -1: config.json or 2048
  std::string memory;          ///< --memory; empty: config.json or none
  std::vector<std::string> secrets;  ///< --secret id=ID[,src=PATH|env=VAR][,type=file|env]
  std::vector<std::string> ssh;      ///< --ssh default|ID[=SOCKET|KEY[,KEY...]]
  std::vector<std::string> build_contexts;  ///< --build-context NAME=DIR|docker-image://REF|oci-layout://PATH
  std::vector<std::string> cache_from;  ///< --cache-from (cache_options.h)
  std::vector<std::string> cache_to;    ///< --cache-to
  bool pull = false;                    ///< --pull: pull every FROM image again
  std::vector<std::string> insecure_registries;  ///< --insecure-registry: unverified https, else http
};

/// buildx's --secret values, read now (as its session does when the build starts): the
/// bytes of each secret by id, kept in memory only. `id=ID` alone reads the environment
/// variable ID if set, else the file ID; a variable that is not set is an empty secret.
std::map<std::string, std::string> read_secrets(const std::vector<std::string>& specs) {
  constexpr size_t kMaxSecretSize = 500 * 1024;  // BuildKit's limit
  std::map<std::string, std::string> out;
  for (const auto& spec : specs) {
    std::string id, type, src, env;
    for (const auto& field : base::split(spec, ',')) {
      auto eq = field.find('=');
      if (eq == std::string::npos)
        throw base::Error("--secret " + spec + ": invalid field '" + field + "' must be a key=value pair");
      std::string key = base::to_lower(field.substr(0, eq)), value = field.substr(eq + 1);
      if (key == "type") {
        if (value != "file" && value != "env")
          throw base::Error("--secret " + spec + ": unsupported secret type \"" + value + "\" (file or env)");
        type = value;
      } else if (key == "id") {
        id = value;
      } else if (key == "source" || key == "src") {
        src = value;
      } else if (key == "env") {
        env = value;
      } else {
        throw base::Error("--secret " + spec + ": unexpected key '" + key + "' in '" + field +
                          "' (known keys: id, src, source, env, type)");
      }
    }
    if (type == "env" && env.empty()) std::swap(env, src);
    if (id.empty()) throw base::Error("--secret " + spec + ": secret missing ID");
    if (env.empty() && src.empty()) (std::getenv(id.c_str()) ? env : src) = id;
    if (!env.empty()) {
      const char* v = std::getenv(env.c_str());
      out[id] = v ? v : "";
      continue;
    }
    struct stat st;
    if (::stat(src.c_str(), &st) < 0) throw base::SysError(errno, "--secret " + id + ": failed to stat", src);
    if (static_cast<size_t>(st.st_size) > kMaxSecretSize)
      throw base::Error("--secret " + id + ": secret too big, max size 500KB: " + src);
    out[id] = base::read_file(src);
  }
  return out;
}

/// buildx's --ssh values: the agent socket of each id, $SSH_AUTH_SOCK for an id with
/// no path; key files are loaded into an ssh-agent started here (kept in `agents`).
std::map<std::string, std::string> ssh_agents(const std::vector<std::string>& specs, const std::string& scratch_dir,
                                              std::list<ops::SshKeyAgent>& agents) {
  auto id_of = [](const std::string& spec) {
    std::string id = spec.substr(0, spec.find('='));
    return id.empty() ? std::string("default") : id;
  };
  std::set<std::string> ids;
  for (const auto& spec : specs)
    if (!ids.insert(id_of(spec)).second) throw base::Error("--ssh: duplicate agent ID \"" + id_of(spec) + "\"");
  std::map<std::string, std::string> out;
  for (const auto& spec : specs) {
    auto eq = spec.find('=');
    std::string id = id_of(spec);
    std::vector<std::string> paths;
    if (eq != std::string::npos) paths = base::split(spec.substr(eq + 1), ',');
    if (paths.empty() || (paths.size() == 1 && paths[0].empty())) {
      const char* sock = std::getenv("SSH_AUTH_SOCK");
      if (!sock || !*sock)
        throw base::Error("--ssh " + spec + ": invalid empty ssh agent socket: SSH_AUTH_SOCK is not set");
      paths = {sock};
    }
    std::vector<std::string> sockets, keys;
    for (const auto& p : paths) {
      struct stat st;
      if (p.empty()) throw base::Error("--ssh " + spec + ": empty path");
      if (::stat(p.c_str(), &st) < 0) throw base::SysError(errno, "--ssh: stat", p);
      (S_ISSOCK(st.st_mode) ? sockets : keys).push_back(std::filesystem::absolute(p).string());
    }
    if (sockets.size() > 1) throw base::Error("--ssh " + spec + ": only single socket allowed");
    if (!sockets.empty() && !keys.empty()) throw base::Error("--ssh " + spec + ": invalid combination of keys and sockets");
    if (!sockets.empty()) {
      out[id] = sockets[0];
    } else {
      out[id] = agents.emplace_back(scratch_dir, keys).socket_path();
    }
  }
  return out;
}

/// Base images: the local store, else pulled from their registry; with `--pull` every
/// named (not digest-pinned) image is pulled again, once per build. The digest returned
/// pins the Source op's cache key. `scratch` and stage names never get here.
class StoreResolver : public frontend::ImageResolver {
 public:
  explicit StoreResolver(image::ImageStore& images, registry::ClientOptions registry_opts = {}, bool pull = false)
      : images_(images), registry_opts_(std::move(registry_opts)), pull_(pull) {}
  frontend::ResolvedImage resolve(const std::string& ref) override {
    if (auto it = resolved_.find(ref); it != resolved_.end()) return it->second;
    std::optional<registry::Reference> parsed;
    try {
      parsed = registry::Reference::parse(ref);
    } catch (const base::Error&) {
      // not a name: maybe an image ID, which only the store knows
    }
    std::optional<image::Image> img;
    if (parsed && !parsed->digest.empty()) img = registry::find_by_digest(images_, *parsed);
    if (!img && !(pull_ && parsed)) img = images_.resolve(ref);
    if (!img) {
      if (!parsed) throw base::Error("image not found: " + ref);
      if (!client_) client_.emplace(registry_opts_);
      try {
        img = registry::ensure_image(*client_, images_, *parsed);
      } catch (const base::Error& e) {
        throw base::Error("failed to resolve source metadata for " + parsed->str() + ": " + e.message());
      }
    }
    frontend::ResolvedImage r;
    try {
      r.ref = image::normalize_ref(ref);
    } catch (const base::Error&) {
      r.ref = ref;
    }
    r.digest = img->manifest_digest.str();
    r.config = img->config;
    resolved_.emplace(ref, r);
    return r;
  }

 private:
  image::ImageStore& images_;
  registry::ClientOptions registry_opts_;
  bool pull_;
  std::optional<registry::Client> client_;  // made at the first pull
  std::map<std::string, frontend::ResolvedImage> resolved_;
};

/// Patterns of `<dockerfile>.dockerignore` (BuildKit: a Dockerfile-specific ignore file
/// wins) or else CONTEXT/.dockerignore. `dockerfile` is empty when it came from stdin.
std::vector<std::string> read_dockerignore(const std::string& context, const std::string& dockerfile) {
  std::string path = dockerfile.empty() ? std::string() : dockerfile + ".dockerignore";
  if (path.empty() || !base::path_exists(path)) path = base::path_join(context, ".dockerignore");
  if (!base::path_exists(path)) return {};
  return cache::parse_ignore_file(base::read_file(path));
}

std::string read_stdin() {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw base::SysError(errno, "read", "stdin");
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

std::vector<std::string> source_lines(const std::string& source) {
  auto lines = base::split(source, '\n');
  for (auto& l : lines)
    if (!l.empty() && l.back() == '\r') l.pop_back();
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  return lines;
}

/// BuildKit's error block: the instruction's lines with two lines of context each side.
void print_source_block(const std::string& source, const base::SourceRange& r) {
  auto lines = source_lines(source);
  int n = static_cast<int>(lines.size());
  int end_line = r.end_line >= r.start_line ? r.end_line : r.start_line;
  int from = std::max(1, r.start_line - 2);
  int to = std::min(n, end_line + 2);
  std::string file = std::filesystem::path(r.file).filename().string();
  if (file.empty()) file = "Dockerfile";
  if (end_line > r.start_line)
    std::fprintf(stderr, "%s:%d-%d\n", file.c_str(), r.start_line, end_line);
  else
    std::fprintf(stderr, "%s:%d\n", file.c_str(), r.start_line);
  std::fprintf(stderr, "--------------------\n");
  for (int i = from; i <= to; ++i) {
    bool mark = i >= r.start_line && i <= end_line;
    std::fprintf(stderr, "%4d | %s %s\n", i, mark ? ">>>" : "   ", lines[i - 1].c_str());
  }
  std::fprintf(stderr, "--------------------\n");
}

constexpr size_t kErrorLogLines = 10;  // output lines of the failed step in its report

/// BuildKit's log block of a failed step: its name, then the last lines it printed,
/// stamped with the seconds since it started. Falls back to the error's detail (the
/// step output the executor kept, unstamped) when no output event reached `logs`.
void print_log_block(const base::Error& e, const std::string& name, const std::vector<StepLog::Line>& tail) {
  std::fprintf(stderr, "------\n > %s:\n", name.c_str());
  if (!tail.empty()) {
    for (const auto& l : tail) std::fprintf(stderr, "%s\n", format_log_line(l).c_str());
  } else if (!e.detail().empty()) {
    auto lines = source_lines(e.detail());
    size_t from = lines.size() > kErrorLogLines ? lines.size() - kErrorLogLines : 0;
    for (size_t i = from; i < lines.size(); ++i) std::fprintf(stderr, "%s\n", lines[i].c_str());
  }
  std::fprintf(stderr, "------\n");
}

void report_build_error(const base::Error& e, const std::string& source, const std::string& display,
                        const graph::SourceMap* source_map, const StepLog& logs) {
  // Runtime failure of a vertex: map it back to the instruction. As BuildKit: the
  // step's log tail, then the Dockerfile lines, then the error.
  if (source_map && !e.vertex().empty()) {
    char* end = nullptr;
    long v = std::strtol(e.vertex().c_str(), &end, 10);
    if (end && *end == '\0' && v >= 0 && static_cast<size_t>(v) < source_map->size() &&
        (*source_map)[v].range.valid()) {
      int vertex = static_cast<int>(v);
      print_log_block(e, vertex_name(*source_map, vertex), logs.tail(vertex, kErrorLogLines));
      print_source_block(source, (*source_map)[v].range);
      std::fprintf(stderr, "ERROR: failed to solve: %s\n", e.message().c_str());
      std::fflush(stderr);
      return;
    }
  }
  // Frontend error born at a Dockerfile location.
  if (e.where() && e.where()->valid()) {
    const auto& w = *e.where();
    std::string file = std::filesystem::path(w.file).filename().string();
    if (file.empty()) file = display;
    print_located_error(source, e.message(), w.start_line, w.start_col > 0 ? w.start_col : 1, file);
    for (const auto& c : e.context()) std::fprintf(stderr, "  %s\n", c.c_str());
    return;
  }
  std::fprintf(stderr, "ERROR: failed to solve: %s\n", e.what());
  if (!e.detail().empty()) std::fprintf(stderr, "%s\n", e.detail().c_str());
  std::fflush(stderr);
}

std::set<std::string> declared_args(const frontend::ast::File& file) {
  std::set<std::string> names;
  auto add = [&names](const frontend::ast::Instruction& ins) {
    if (ins.name != "arg") return;
    for (const auto& a : ins.args) names.insert(a.substr(0, a.find('=')));
  };
  for (const auto& ins : file.instructions) {
    add(ins);
    if (ins.onbuild) add(*ins.onbuild);
  }
  return names;
}

/// A stable id per vertex for explaining cache misses: the same instruction (its text
/// as written) of the same stage of the same Dockerfile and context gets the same id in
/// every build, whatever its arguments expand to or the files it reads contain.
std::vector<std::string> step_ids(const frontend::LowerResult& lowered, const std::string& source,
                                  const std::string& context, const std::string& dockerfile) {
  auto lines = source_lines(source);
  std::map<std::string, int> seen;
  std::vector<std::string> ids;
  for (const auto& info : lowered.source_map) {
    std::string text;
    if (info.range.valid())
      for (int l = info.range.start_line; l <= std::max(info.range.start_line, info.range.end_line); ++l)
        if (l >= 1 && l <= static_cast<int>(lines.size())) text += lines[static_cast<size_t>(l - 1)] + "\n";
    // The op's kind tells apart the vertices of one instruction (its context source,
    // its copy); the progress name would not do, as it shows expanded arguments.
    const auto& op = lowered.definition.vertices[ids.size()].op;
    std::string kind = std::to_string(op.index());
    if (const auto* src = std::get_if<graph::SourceOp>(&op)) kind += "." + std::to_string(static_cast<int>(src->kind));
    std::string base = context + '\0' + dockerfile + '\0' + info.stage + '\0' + text + '\0' + kind;
    int ordinal = seen[base]++;
    ids.push_back(base::sha256_hex(base + '\0' + std::to_string(ordinal)));
  }
  return ids;
}

bool is_predefined_arg(const std::string& k) {
  static const std::set<std::string> kPredefined = {
      "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy",
      "NO_PROXY",   "no_proxy",   "ALL_PROXY",   "all_proxy",   "BUILDKIT_INLINE_CACHE",
      "BUILDKIT_DOCKERFILE_CHECK", "SOURCE_DATE_EPOCH"};
  return kPredefined.count(k) > 0;
}

int run_build(const std::string& root, const BuildOptions& o) {
  ProgressMode mode = resolve_progress_mode(o.quiet ? ProgressMode::Quiet : parse_progress_mode(o.progress));
  bool quiet = mode == ProgressMode::Quiet;
  // rawjson keeps stderr to one JSON object per line: the notes for people (warnings,
  // naming, build checks) are left out of it; errors still end the stream as text.
  const bool notes = !quiet && mode != ProgressMode::RawJson;
  const CallSpec call = parse_call(o.check ? "check" : o.call);

  // --output is checked before anything runs: a bad key builds and writes nothing.
  std::vector<OutputSpec> outputs = parse_outputs(o.outputs);
  std::vector<std::string> tags;
  for (const auto& t : o.tags) tags.push_back(image::normalize_ref(t));
  std::vector<CacheImportSpec> cache_from;
  for (const auto& s : o.cache_from) cache_from.push_back(parse_cache_from(s));
  std::vector<CacheExportSpec> cache_to;
  for (const auto& s : o.cache_to) cache_to.push_back(parse_cache_to(s));

  // `-` as the context: the Dockerfile comes on stdin and the context is empty, as
  // `docker build - < Dockerfile`. `-f -` reads the Dockerfile from stdin too.
  const bool stdin_context = o.context == "-";
  if (stdin_context && !o.file.empty() && o.file != "-")
    throw base::Error("with the context `-` the Dockerfile comes from stdin: -f cannot name a file");
  std::string context, dockerfile, display, source;
  if (!stdin_context) {
    std::error_code ec;
    auto context_path = std::filesystem::canonical(o.context, ec);
    if (ec || !std::filesystem::is_directory(context_path))
      throw base::Error("unable to prepare context: path `" + o.context + "` not found");
    context = context_path.string();
  }
  if (stdin_context || o.file == "-") {
    source = read_stdin();
    // A tar or gzip on stdin would be a context archive: say so rather than parse it.
    if ((source.size() > 262 && source.compare(257, 5, "ustar") == 0) ||
        (source.size() > 2 && static_cast<unsigned char>(source[0]) == 0x1f &&
         static_cast<unsigned char>(source[1]) == 0x8b))
      throw base::Error("a context archive on stdin is not supported yet: unpack it and pass the directory");
    display = "Dockerfile";
  } else {
    dockerfile = o.file.empty() ? base::path_join(context, "Dockerfile") : o.file;
    if (!base::path_exists(dockerfile))
      throw base::Error("failed to read dockerfile: open " + dockerfile + ": no such file or directory");
    display = std::filesystem::path(dockerfile).filename().string();
    source = base::read_file(dockerfile);
  }

  std::map<std::string, std::string> build_args;
  for (const auto& kv : o.build_args) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) {
      build_args[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else if (const char* v = std::getenv(kv.c_str())) {
      build_args[kv] = v;  // docker: --build-arg K takes the value from the environment
    }
  }
  const std::optional<int64_t> epoch = source_date_epoch(build_args);
  check_outputs(outputs, epoch, tags);

  // Before any thread starts: Ctrl-C and SIGTERM then stop the build through its
  // owners instead of killing it with work half done.
  InterruptGuard interrupt;
  cache::Store store(root);
  image::ImageStore images(store);
  // The root's automatic GC runs when the build ends, successful or not (declared
  // before the executor, so the build's lease is gone by then).
  std::optional<GcAfterBuild> gc_after;
  if (call.name == "build")
    gc_after.emplace(store, mode == ProgressMode::Plain, [&interrupt] { return interrupt.signal() != 0; });
  // The empty context of `builder build -`, in the store's scratch space so that a
  // killed build's copy is repaired away.
  std::optional<base::TempDir> empty_context;
  if (stdin_context) {
    empty_context.emplace(store.scratch_dir(), "context-" + std::to_string(::getpid()) + "-");
    context = empty_context->path();
  }
  const graph::SourceMap* source_map = nullptr;
  frontend::LowerResult lowered;
  std::vector<frontend::LintFinding> findings;  // build checks, printed at the end
  StepLog logs(kErrorLogLines);
  std::optional<HistoryRecorder> recorder;  // `builder history`: from here to the end
  try {
    // The parser's warnings (empty continuation lines) come back as build checks.
    auto file = frontend::parse(source, display);
    auto declared = declared_args(file);
    std::vector<std::string> unused;
    for (const auto& [k, v] : build_args)
      if (!declared.count(k) && !is_predefined_arg(k)) unused.push_back(k);

    frontend::LowerOptions lo;
    lo.build_args = build_args;
    lo.target = o.target;
    for (const auto& a : o.allow) {
      if (a != "network.host" && a != "security.insecure")
        throw base::Error("--allow " + a + ": unknown entitlement (network.host, security.insecure)");
      lo.allow.push_back(a);
    }
    lo.context_excludes = read_dockerignore(context, dockerfile);
    std::optional<cache::PathFilter> ignore_filter;
    try {
      ignore_filter.emplace(lo.context_excludes);
    } catch (const base::Error&) {  // a bad pattern: COPY reports it
    }
    if (ignore_filter) lo.context_ignored = [&f = *ignore_filter](const std::string& p) { return f.excluded(p); };
    lo.lint = &findings;
    BuildContexts named_contexts = prepare_build_contexts(o.build_contexts, images);
    lo.named_contexts = named_contexts.named;
    StoreResolver resolver(images, registry::ClientOptions{o.insecure_registries, ""}, o.pull);
    if (call.name != "build") return run_call(call, file, source, display, lo, resolver, quiet);
    // --secret and --ssh are read and started before anything runs, as buildx's session.
    std::map<std::string, std::string> secrets = read_secrets(o.secrets);
    std::list<ops::SshKeyAgent> key_agents;  // until the build ends
    std::map<std::string, std::string> agents = ssh_agents(o.ssh, store.scratch_dir(), key_agents);
    recorder.emplace(store, HistoryRecorder::Info{stdin_context ? "-" : context, dockerfile.empty() ? "-" : dockerfile,
                                                  o.target, tags});
    lowered = frontend::lower(file, lo, resolver);
    source_map = &lowered.source_map;
    recorder->name_steps(lowered.source_map);
    if (notes) {
      for (const auto& w : lowered.warnings) std::fprintf(stderr, "WARNING: %s\n", w.c_str());
      if (!unused.empty())
        std::fprintf(stderr, "[Warning] One or more build-args [%s] were not consumed\n",
                     base::join(unused, " ").c_str());
    }

    std::map<std::string, std::string> locals = named_contexts.locals;
    locals["context"] = context;
    ops::LocalExecutor executor(store, images, locals);
    SandboxLimits limits = sandbox_limits(root, o.pids_limit, o.memory);
    executor.set_step_limits(limits.pids, limits.memory);
    executor.set_secrets(std::move(secrets));
    executor.set_ssh_agents(std::move(agents));
    // --cache-from is read before the first step; problems with it are warnings.
    BuildCache build_cache(
        store, images, cache_from, cache_to,
        [notes](const std::string& w) {
          if (notes) std::fprintf(stderr, "WARNING: %s\n", w.c_str());
        },
        registry::ClientOptions{o.insecure_registries, ""});
    build_cache.attach(executor);
    solver::DbStepRecords records(store.db());
    solver::SolveOptions so;
    so.no_cache = o.no_cache;
    so.parallelism = o.parallelism;
    so.records = &records;
    so.step_ids = step_ids(lowered, source, context, dockerfile.empty() ? "-" : dockerfile);
    for (const auto& info : lowered.source_map) so.names.push_back(info.name);
    so.build_args = declared;
    solver::Solver solver(executor, so);
    auto progress = make_progress(mode, lowered.definition, lowered.source_map);
    ops::Result result;
    try {
      result = solver.build(lowered.definition, [&progress, &logs, &recorder](const solver::Event& ev) {
        logs(ev);
        (*progress)(ev);
        (*recorder)(ev);
      });
    } catch (...) {
      progress->finish();
      throw;
    }
    progress->finish();
    if (int sig = interrupt.signal()) throw base::Error(std::string("interrupted by ") + sigabbrev_np(sig));

    auto done = run_outputs(executor, images, result, lowered.definition.image, outputs, tags, epoch,
                            [notes](const std::string& line) {
                              if (notes) std::fprintf(stderr, "%s\n", line.c_str());
                            });
    const auto& exported = done.image;
    for (const auto& line : build_cache.export_caches(executor, result))
      if (notes) std::fprintf(stderr, "%s\n", line.c_str());
    recorder->completed(exported.config.str());
    if (notes) {
      // As docker's image exporter reports it: the image ID (when the store got an
      // image), then each name set. The tty display keeps lines within 80 columns, so
      // there the ID is docker's short form (stdout has the whole one).
      if (std::any_of(outputs.begin(), outputs.end(), [](const OutputSpec& out) { return out.type == "image"; })) {
        std::string id = exported.config.str();
        if (mode == ProgressMode::Tty) id = "sha256:" + std::string(exported.config.hex().substr(0, 12));
        std::fprintf(stderr, "writing image %s done\n", id.c_str());
      }
      for (const auto& t : done.named) std::fprintf(stderr, "naming to %s done\n", t.c_str());
      print_lint_summary(findings, display);
      std::fflush(stderr);
    }
    // stdout carries the image ID, unless an output streams its tar there.
    if (!writes_stdout(outputs)) {
      std::printf("%s\n", exported.config.str().c_str());
      std::fflush(stdout);
    } else if (notes) {
      std::fprintf(stderr, "image ID %s\n", exported.config.str().c_str());
    }
    return 0;
  } catch (const base::Error& e) {
    if (int sig = interrupt.signal()) {
      if (recorder) recorder->interrupted(std::string("interrupted by SIG") + sigabbrev_np(sig));
      // What failed is the consequence (a killed step); the cause is the signal.
      std::fprintf(stderr, "ERROR: build interrupted by SIG%s; nothing was tagged\n", sigabbrev_np(sig));
      return 128 + sig;
    }
    if (recorder) recorder->failed(e.what());
    if (notes) print_lint_summary(findings, display);
    report_build_error(e, source, display, source_map, logs);
    return 1;
  }
}

}  // namespace

void add_build_command(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<BuildOptions>();
  auto* cmd = app.add_subcommand("build", "Build an image from a Dockerfile");
  // Repeatable options take one value per occurrence, as docker's do: CLI11's vector
  // options are greedy by default and would take the words after them as more values.
  cmd->add_option("-t,--tag", o->tags, "Name and optionally a tag (name:tag)")->allow_extra_args(false);
  cmd->add_option("-f,--file", o->file, "Path of the Dockerfile (default CONTEXT/Dockerfile)");
  cmd->add_option("--build-arg", o->build_args, "Build-time variable K=V")->allow_extra_args(false);
  cmd->add_option("--target", o->target, "Target build stage");
  cmd->add_option("--allow", o->allow, "Grant an entitlement: network.host, security.insecure")
      ->allow_extra_args(false);
  cmd->add_flag("--no-cache", o->no_cache, "Do not use the cache");
  cmd->add_flag("--pull", o->pull, "Always pull the FROM images again (tags may have moved)");
  add_insecure_registry_option(cmd, o->insecure_registries);
  cmd->add_option("--secret", o->secrets, "Secret for RUN --mount=type=secret: id=ID[,src=PATH|env=VAR]")
      ->allow_extra_args(false);
  cmd->add_option("--build-context", o->build_contexts,
                  "Additional named context NAME=DIR|docker-image://REF|oci-layout://PATH[:TAG][@DIGEST]")
      ->allow_extra_args(false);
  cmd->add_option("--ssh", o->ssh, "SSH agent socket or keys for RUN --mount=type=ssh: default|ID[=SOCKET|KEY[,KEY]]")
      ->allow_extra_args(false);
  cmd->add_option("--pids-limit", o->pids_limit, "Tasks each RUN step may have (default 2048; 0: no limit)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-m,--memory", o->memory, "Memory limit of each RUN step (e.g. 512MiB; default: none)");
  cmd->add_option("--parallelism", o->parallelism, "Steps that may run at once (default: every ready step)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("-q,--quiet", o->quiet, "Print only the image ID (same as --progress quiet)");
  cmd->add_option("--progress", o->progress, "Progress output: auto, tty, plain, rawjson (JSON lines), quiet");
  cmd->add_option("-o,--output", o->outputs, "Output: type=image|registry|oci|docker|local|tar[,dest=PATH|-][,name=][,push=true][,tar=false][,compression=gzip|zstd|uncompressed][,compression-level=N][,force-compression=true][,oci-mediatypes=true|false][,rewrite-timestamp=true]")->allow_extra_args(false);
  cmd->add_option("--cache-from", o->cache_from,
                  "Import build cache: type=registry,ref=R | type=local,src=DIR | REF (an image's inline cache)")
      ->allow_extra_args(false);
  cmd->add_option("--cache-to", o->cache_to,
                  "Export build cache: type=registry,ref=R | type=local,dest=DIR | type=inline"
                  "[,mode=min|max][,cache-mounts=true][,ignore-error=true]")
      ->allow_extra_args(false);
  cmd->add_option("--call", o->call, "Evaluate instead of building: build, check, outline, targets[,format=json]");
  cmd->add_flag("--check", o->check, "Shorthand for --call=check: run the build checks, build nothing");
  cmd->add_option("context", o->context, "Build context directory")->required();
  cmd->callback([&ctx, o] {
    ctx.action = [&ctx, o] { return run_build(ctx.root, *o); };
  });
}

}  // namespace builder::cli
