// COPY: a Local source (or another stage / an image with --from) and a FileOp copy on
// top of the stage. Follows BuildKit's dispatchCopy for the destination, chmod parsing
// and the history string.
#include "base/strings.h"
#include "frontend/lower_internal.h"

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

}  // namespace

void Lowerer::lower_copy(Stage& st, const ast::Instruction& ins) {
  std::string from, chown, chmod;
  for (const auto& f : ins.flags) {
    auto eq = f.find('=');
    std::string name = f.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::string value = eq == std::string::npos ? "" : f.substr(eq + 1);
    if (name == "from") from = value;
    else if (name == "chown") chown = value;
    else if (name == "chmod") chmod = value;
    else if (name == "link" || name == "parents" || name == "exclude")
      fail(ins, "COPY --" + name + " is not supported yet");
    else
      fail(ins, "unknown flag: --" + name);
  }
  if (!ins.heredocs.empty()) fail(ins, "COPY with a heredoc is not supported yet");
  if (ins.args.size() < 2) fail(ins, "COPY requires at least two arguments, but only one was provided. Destination could not be determined");

  std::vector<std::string> words;
  for (const auto& a : ins.args) words.push_back(expand_word(st, ins, a));
  chown = expand_word(st, ins, chown);
  chmod = expand_word(st, ins, chmod);
  from = expand_word(st, ins, from);
  std::string dest_raw = words.back();
  std::vector<std::string> srcs(words.begin(), words.end() - 1);
  // Unlike the classic builder, BuildKit accepts several sources for a destination
  // without a trailing '/': each is copied in turn, so a later file replaces an earlier
  // one and a file after a directory goes into it.

  std::optional<uint32_t> mode;
  if (!chmod.empty()) {
    bool ok = chmod.find_first_not_of("01234567") == std::string::npos && chmod.size() <= 6;
    unsigned long v = ok ? std::stoul(chmod, nullptr, 8) : 0;
    if (!ok || v > 07777)
      fail(ins, "invalid chmod parameter: '" + chmod + "'. it should be octal string and between 0 and 07777");
    mode = static_cast<uint32_t>(v);
  }

  std::string name = progress_name(st, display_text(st, ins));

  int src_vertex = -1;
  if (!from.empty()) {
    if (Stage* s = find_stage(from, st.index)) {
      ensure_lowered(*s, &ins);
      src_vertex = s->vertex;
    } else {
      for (auto& other : stages_)
        if (!other.name.empty() && other.name == base::to_lower(from))
          fail(ins, "cannot copy from stage \"" + from + "\", it needs to be defined before current stage \"" + st.label + "\"");
      ResolvedImage img;
      try {
        img = resolver_.resolve(from);
      } catch (base::Error& e) {
        fail(ins, e.message());
      }
      graph::SourceOp src;
      src.kind = graph::SourceOp::Kind::Image;
      src.ref = img.ref;
      src.digest = img.digest;
      src_vertex = add_vertex(src, {}, &ins, "FROM " + img.ref, st);
    }
  } else {
    graph::SourceOp src;
    src.kind = graph::SourceOp::Kind::Local;
    src.local_name = opts_.context_name;
    bool everything = false;
    std::vector<std::string> include;
    for (const auto& s : srcs) {
      std::string c = base::clean_path("/" + s);
      if (c == "/") everything = true;
      else include.push_back(c.substr(1));
    }
    if (!everything) src.include_patterns = include;
    src.exclude_patterns = opts_.context_excludes;
    src_vertex = add_vertex(src, {}, &ins, "[internal] load build context", st);
  }

  graph::CopyAction cp;
  cp.src_input = 1;
  cp.src_paths = srcs;
  cp.dest = resolve_dest(working_dir(st), dest_raw);
  cp.chown = chown;
  cp.chmod = mode;
  cp.allow_wildcard = true;
  cp.allow_empty_wildcard = true;  // as BuildKit: `COPY *.none /d/` copies nothing
  graph::FileOp op;
  op.actions.push_back(cp);
  st.vertex = add_vertex(op, {st.vertex, src_vertex}, &ins, name, st);

  std::string msg = "COPY";
  if (!chown.empty()) msg += " --chown=" + chown;
  if (!chmod.empty()) msg += " --chmod=" + chmod;
  for (const auto& s : srcs) msg += " " + s;
  msg += " " + dest_raw;
  commit(st, msg, true, true);
}

}  // namespace builder::frontend::detail
