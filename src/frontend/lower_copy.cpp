// COPY and ADD: sources from the context, another stage or an image, heredoc documents,
// local archives (ADD), URLs and git repositories (ADD: each its own Source vertex,
// fetched by the executor); --chown, --chmod (octal or symbolic), --link, --parents,
// --exclude, --checksum, --keep-git-dir. Follows BuildKit's dispatchCopy for the destination, the flags' meaning and
// the history string.
#include "base/digest.h"
#include "base/file_mode.h"
#include "base/strings.h"
#include "frontend/instruction_flags.h"
#include "frontend/lower_internal.h"
#include "frontend/parse.h"
#include "frontend/source_ref.h"

namespace builder::frontend::detail {
namespace {

/// pathRelativeToWorkingDir: absolute paths are cleaned, relative ones joined to the
/// working directory; a trailing '/' (or "." / "") is kept as "into this directory".
std::string resolve_dest(const std::string& wd, std::string p) {
  if (p == "." || p.empty()) p = "./";
  bool slash = p.back() == '/' || (p.size() >= 2 && p.substr(p.size() - 2) == "/.");
  std::string r = p[0] == '/' ? base::clean_path(p) : base::clean_path(wd + "/" + p);
  if (slash && r != "/") r += "/";
  return r;
}

/// BuildKit's containsWildcards: '*', '?' or '[' not escaped by '\'.
bool contains_wildcards(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') ++i;
    else if (s[i] == '*' || s[i] == '?' || s[i] == '[') return true;
  }
  return false;
}

}  // namespace

std::string chomp_heredoc(const std::string& content) {
  std::string out;
  bool bol = true;
  for (char ch : content) {
    if (bol && ch == '\t') continue;
    bol = ch == '\n';
    out += ch;
  }
  return out;
}

void Lowerer::lower_copy(Stage& st, const ast::Instruction& ins) {
  const bool is_add = ins.name == "add";
  const std::string cmd = is_add ? "ADD" : "COPY";
  InstructionFlags flags = parse_flags(ins);
  if (ins.args.size() < 2)
    fail(ins, cmd + " requires at least two arguments, but only one was provided. Destination could not be determined");
  if (parse_heredoc_word(ins.args.back())) fail(ins, cmd + " cannot accept a heredoc as a destination");

  // Sources are paths, or heredoc documents named on the line.
  struct Document {
    std::string name, data;
  };
  std::vector<std::string> srcs;
  std::vector<Document> docs;
  for (size_t i = 0; i + 1 < ins.args.size(); ++i) {
    auto h = parse_heredoc_word(ins.args[i]);
    if (!h) {
      srcs.push_back(expand_word(st, ins, ins.args[i]));
      continue;
    }
    std::string data;
    for (const auto& d : ins.heredocs)
      if (d.name == h->name) data = d.content;
    if (h->chomp) data = chomp_heredoc(data);
    if (h->expand) {
      // ExpandRaw: quotes are ordinary characters, the escape is always '\'.
      ShellOptions raw;
      raw.skip_process_quotes = true;
      try {
        data = process_word(data, env_of(st), raw);
      } catch (const base::Error& e) {
        fail(ins, e.message());
      }
    }
    docs.push_back(Document{h->name, data});
  }
  std::string dest_raw = expand_word(st, ins, ins.args.back());
  std::string chown = expand_word(st, ins, flags.str("chown"));
  std::string chmod = expand_word(st, ins, flags.str("chmod"));
  std::string checksum = is_add ? expand_word(st, ins, flags.str("checksum")) : "";
  std::vector<std::string> excludes = flags.list("exclude");
  const bool link = flags.boolean("link");
  const bool parents = !is_add && flags.boolean("parents");
  const bool unpack = is_add && (!flags.has("unpack") || flags.boolean("unpack"));
  // Remote sources are never unpacked unless asked (BuildKit: AttemptUnpack only with
  // an explicit --unpack=true).
  const bool unpack_remote = is_add && flags.has("unpack") && flags.boolean("unpack");
  std::optional<bool> keep_git_dir;
  if (is_add && flags.has("keep-git-dir")) keep_git_dir = flags.boolean("keep-git-dir");
  std::string from = is_add ? "" : flags.str("from");
  // BuildKit (toCommand): --from names a stage or image literally.
  if (!from.empty() && process_word(from, env_from_list({}), shell_) != from)
    fail(ins, "variable expansion is not supported for --from, define a new stage with FROM using ARG from global "
              "scope as a workaround");

  std::optional<uint32_t> mode;
  std::string mode_symbolic;
  if (!chmod.empty()) {
    const std::string bad = "invalid chmod parameter: '" + chmod + "'. it should be octal string and between 0 and 07777";
    bool octal = chmod.find_first_not_of("01234567") == std::string::npos && chmod.size() <= 11;
    if (octal) {
      unsigned long v = std::stoul(chmod, nullptr, 8);
      if (v > 07777) fail(ins, bad);
      mode = static_cast<uint32_t>(v);
    } else if (chmod.find_first_not_of("0123456789") == std::string::npos || !base::valid_symbolic_mode(chmod)) {
      fail(ins, bad);
    } else {
      mode_symbolic = chmod;
    }
  }
  // Each source is a path of the context (or --from), a git repository or a URL.
  struct Remote {
    graph::SourceOp op;
    std::string copy_path;  ///< what is copied out of the fetched source
  };
  std::vector<std::optional<Remote>> remotes(srcs.size());
  bool any_path = false;
  for (size_t i = 0; i < srcs.size(); ++i) {
    const std::string& s = srcs[i];
    std::optional<GitRef> git;
    try {
      git = parse_git_ref(s);
    } catch (const base::Error& e) {
      fail(ins, e.message());
    }
    if (git) {
      if (!is_add) fail(ins, "source can't be a git ref for COPY");
      Remote r;
      r.op.kind = graph::SourceOp::Kind::Git;
      r.op.url = git->remote;
      r.op.git_ref = git->ref;
      r.op.subdir = git->subdir;
      if (keep_git_dir && git->keep_git_dir && *keep_git_dir != *git->keep_git_dir)
        fail(ins, "inconsistent keep-git-dir configuration");
      r.op.keep_git_dir = git->keep_git_dir.value_or(keep_git_dir.value_or(false));
      std::string sum = checksum;
      if (!sum.empty() && !git->checksum.empty() && sum != git->checksum)
        fail(ins, "checksum mismatch \"" + sum + "\" != \"" + git->checksum + "\"");
      if (!git->checksum.empty()) sum = git->checksum;
      if (!sum.empty() && (sum.size() < 7 || sum.size() > 64 || sum.find_first_not_of("0123456789abcdef") != std::string::npos))
        fail(ins, "invalid git checksum \"" + sum + "\": expected a commit hash (7 to 64 hex digits)");
      r.op.checksum = sum;
      r.copy_path = "/";
      remotes[i] = std::move(r);
    } else if (is_http_url(s)) {
      if (!is_add) fail(ins, "source can't be a URL for COPY");
      Remote r;
      r.op.kind = graph::SourceOp::Kind::Http;
      r.op.url = s;
      r.op.filename = url_file_name(s);
      if (!checksum.empty()) {
        // digest.Parse: only sha256 is implemented here.
        auto colon = checksum.find(':');
        std::string algo = colon == std::string::npos ? "" : checksum.substr(0, colon);
        if (algo == "sha384" || algo == "sha512")
          fail(ins, "unsupported checksum algorithm \"" + algo + "\" (only sha256)");
        if (!base::Digest::valid(checksum)) fail(ins, "invalid checksum digest format: \"" + checksum + "\"");
      }
      r.op.checksum = checksum;
      r.copy_path = r.op.filename;
      remotes[i] = std::move(r);
    } else {
      any_path = true;
    }
  }
  if (!checksum.empty()) {
    if (srcs.size() != 1) fail(ins, "checksum can't be specified for multiple sources");
    if (!remotes[0]) fail(ins, "checksum requires HTTP(S) or Git sources");
  }

  std::string name = progress_name(st, display_text(st, ins));
  const std::string dest = resolve_dest(working_dir(st), dest_raw);

  // Where path sources come from: a stage, an image or the context.
  int src_vertex = -1;
  if (!any_path) {
  } else if (!from.empty()) {
    if (Stage* s = find_stage(from, st.index)) {
      ensure_lowered(*s, &ins);
      src_vertex = s->vertex;
    } else {
      std::string lower_from = base::to_lower(from);
      for (auto& other : stages_)
        if (!other.name.empty() && other.name == lower_from)
          fail(ins, "cannot copy from stage \"" + from + "\", it needs to be defined before current stage \"" +
                        st.label + "\"");
      if (from.find_first_not_of("0123456789") == std::string::npos)
        fail(ins, "invalid stage index " + from + " for COPY --from");
      src_vertex = image_source(st, ins, from);
    }
  } else {
    graph::SourceOp src;
    src.kind = graph::SourceOp::Kind::Local;
    src.local_name = opts_.context_name;
    bool everything = false;
    std::vector<std::string> include;
    for (size_t i = 0; i < srcs.size(); ++i) {
      if (remotes[i]) continue;
      const std::string& s = srcs[i];
      std::string c = base::clean_path("/" + s);
      auto pivot = s.find("/./");
      if (parents && pivot != std::string::npos)
        c = base::clean_path("/" + s.substr(0, pivot) + "/" + s.substr(pivot + 3));
      if (c == "/") everything = true;
      else include.push_back(c.substr(1));
    }
    if (!everything) src.include_patterns = include;
    src.exclude_patterns = opts_.context_excludes;
    src_vertex = add_vertex(src, {}, &ins, "[internal] load build context", st);
  }

  // The copy runs on the stage, or with --link (and no --chmod, as BuildKit) on an empty
  // state merged on top of it afterwards, so it does not depend on what is below.
  const bool linked = link && chmod.empty();
  int target = st.vertex;
  if (linked) {
    graph::SourceOp scratch;
    scratch.kind = graph::SourceOp::Kind::Scratch;
    target = add_vertex(scratch, {}, &ins, "scratch", st);
  }
  graph::FileOp op;
  std::vector<int> inputs{target};
  auto base_copy = [&]() {
    graph::CopyAction cp;
    cp.dest = dest;
    cp.chown = chown;
    cp.chmod = mode;
    cp.chmod_symbolic = mode_symbolic;
    return cp;
  };
  if (src_vertex >= 0) inputs.push_back(src_vertex);
  for (size_t i = 0; i < srcs.size(); ++i) {
    const std::string& s = srcs[i];
    if (remotes[i]) {
      // BuildKit names the source vertex after the step; "[internal]" here keeps the
      // step's own name for the copy, which is what the cache states are read from.
      int v = add_vertex(remotes[i]->op, {}, &ins,
                         std::string("[internal] ") + (remotes[i]->op.kind == graph::SourceOp::Kind::Git ? "git " : "fetch ") + s, st);
      graph::CopyAction cp = base_copy();
      cp.src_input = static_cast<int>(inputs.size());
      inputs.push_back(v);
      cp.src_paths = {remotes[i]->copy_path};
      cp.allow_wildcard = false;
      cp.unpack_archives = remotes[i]->op.kind == graph::SourceOp::Kind::Http && unpack_remote;
      op.actions.push_back(std::move(cp));
      continue;
    }
    graph::CopyAction cp = base_copy();
    cp.src_input = 1;
    cp.exclude_patterns = excludes;
    cp.allow_wildcard = true;
    cp.allow_empty_wildcard = true;  // as BuildKit: `COPY *.none /d/` copies nothing
    cp.unpack_archives = unpack;
    std::string path = s;
    if (parents) {
      // --parents: the path below an optional "/./" pivot is kept under the destination.
      std::string pattern;
      auto pivot = s.find("/./");
      if (pivot == std::string::npos) {
        pattern = s;
        path = "/";
      } else {
        pattern = s.substr(pivot + 3);
        path = s.substr(0, pivot);
      }
      pattern = base::clean_path("/" + pattern).substr(1);
      cp.include_patterns = {pattern};
      if (!contains_wildcards(path) && !contains_wildcards(pattern))
        cp.required_paths = {base::clean_path("/" + path + "/" + pattern)};
    }
    cp.src_paths = {path};
    op.actions.push_back(std::move(cp));
  }
  for (const auto& d : docs) {
    graph::SourceOp scratch;
    scratch.kind = graph::SourceOp::Kind::Scratch;
    int empty = add_vertex(scratch, {}, &ins, "scratch", st);
    graph::FileOp mk;
    mk.actions.push_back(graph::MkfileAction{"/" + d.name, d.data, 0644, ""});
    int doc = add_vertex(mk, {empty}, &ins, "preparing inline document", st);
    graph::CopyAction cp = base_copy();
    cp.src_input = static_cast<int>(inputs.size());
    cp.src_paths = {d.name};
    cp.allow_wildcard = false;
    inputs.push_back(doc);
    op.actions.push_back(std::move(cp));
  }
  int copied = add_vertex(op, inputs, &ins, name, st);
  if (linked) {
    graph::MergeOp merge;
    // "[2/3] LINK COPY ...": the step's number, then the word.
    auto close = name.rfind('[', 0) == 0 ? name.find("] ") : std::string::npos;
    std::string link_name = close != std::string::npos
                                ? name.substr(0, close + 2) + "LINK " + name.substr(close + 2)
                                : "LINK " + name;
    st.vertex = add_vertex(merge, {st.vertex, copied}, &ins, link_name, st);
  } else {
    st.vertex = copied;
  }

  std::string msg = cmd;
  if (parents) msg += " --parents";
  if (!chown.empty()) msg += " --chown=" + chown;
  if (!chmod.empty()) msg += " --chmod=" + chmod;
  for (const auto& s : srcs) msg += " " + s;
  for (const auto& d : docs) msg += " <<" + d.name;
  msg += " " + dest_raw;
  commit(st, msg, true, true);
}

}  // namespace builder::frontend::detail
